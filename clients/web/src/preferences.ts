// Whether a (category, channel) is delivered under a user's Preferences, by
// the server's rule (proto PreferenceRule): required categories always are;
// otherwise the most specific of the user's rules decides — (category,
// channel), (category, any), (any, channel), (any, any) — then the tenant's
// defaults in the same order; with no rule at all, it is delivered.

import {
  DeliveryChannel,
  type PreferenceRule,
  type Preferences,
} from "./gen/elloloop/notify/v1/notify_pb.js";

function decide(
  rules: readonly PreferenceRule[],
  category: string,
  channel: DeliveryChannel,
): boolean | undefined {
  const order: Array<[string, DeliveryChannel]> = [
    [category, channel],
    [category, DeliveryChannel.UNSPECIFIED],
    ["", channel],
    ["", DeliveryChannel.UNSPECIFIED],
  ];
  for (const [c, ch] of order) {
    const rule = rules.find((r) => r.category === c && r.channel === ch);
    if (rule) return rule.enabled;
  }
  return undefined;
}

export function preferenceEnabled(
  prefs: Preferences | null | undefined,
  category: string,
  channel: DeliveryChannel = DeliveryChannel.IN_APP,
): boolean {
  if (!prefs) return true;
  if (category && prefs.requiredCategories.includes(category)) return true;
  return (
    decide(prefs.rules, category, channel) ??
    decide(prefs.tenantDefaults, category, channel) ??
    true
  );
}
