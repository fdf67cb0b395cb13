"""The cron scheduler: calendar and reconcile triggers, gates, dispatch (scheduler.md)."""
