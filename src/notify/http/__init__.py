"""HTTP listeners: one TCP port, every protocol a Connect server speaks."""
