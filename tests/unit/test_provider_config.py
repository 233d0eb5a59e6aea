"""The FCM and Twilio variables: what they accept, and one line naming the variable otherwise."""

from __future__ import annotations

import pytest

from notify.config import ConfigError, load_config

DEV = {"NOTIFY_AUTH_DEV_MODE": "true"}
SID = "AC" + "0123456789abcdef" * 2


def test_accepted_values() -> None:
    config = load_config(
        {
            **DEV,
            "NOTIFY_FCM_CREDENTIALS_FILE": " /etc/notify/fcm.json ",
            "NOTIFY_FCM_ENDPOINT": "http://127.0.0.1:9999/",
            "NOTIFY_TWILIO_ACCOUNT_SID": SID,
            "NOTIFY_TWILIO_AUTH_TOKEN": "tok",
            "NOTIFY_TWILIO_FROM": "MG" + "ab" * 16,
            "NOTIFY_TWILIO_WHATSAPP_FROM": "whatsapp:+14155238886",
            "NOTIFY_TWILIO_BASE_URL": "https://api.twilio.com",
        }
    )
    assert config.fcm_credentials_file == "/etc/notify/fcm.json"
    assert config.fcm_endpoint == "http://127.0.0.1:9999"
    assert config.twilio_from == "MG" + "ab" * 16
    assert config.twilio_whatsapp_from == "+14155238886"
    assert config.twilio_base_url == "https://api.twilio.com"
    assert load_config({**DEV, "NOTIFY_TWILIO_FROM": "+15005550006"}).twilio_from == "+15005550006"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("NOTIFY_FCM_ENDPOINT", "http://fcm.example.com", "must be an https:// URL"),
        ("NOTIFY_FCM_ENDPOINT", "ftp://127.0.0.1", "must be an https:// URL"),
        ("NOTIFY_TWILIO_BASE_URL", "http://api.twilio.com", "must be an https:// URL"),
        ("NOTIFY_TWILIO_ACCOUNT_SID", "SK" + "0" * 32, "is not an Account SID"),
        ("NOTIFY_TWILIO_ACCOUNT_SID", "AC123", "is not an Account SID"),
        ("NOTIFY_TWILIO_FROM", "4155550100", "is not an E.164 number"),
        ("NOTIFY_TWILIO_FROM", "+1 415 555 0100", "is not an E.164 number"),
        ("NOTIFY_TWILIO_WHATSAPP_FROM", "MG" + "ab" * 16, "is not an E.164 number"),
    ],
)
def test_refused_values_name_the_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({**DEV, name: value})
    message = str(caught.value)
    assert message.startswith(f"{name}: ")
    assert says in message
    assert "\n" not in message
