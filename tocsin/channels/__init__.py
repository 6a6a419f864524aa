"""Notification channels: one interface (tocsin.channels.base.Channel), one adapter per vendor."""
