"""Scheduling: cron rules and the jobs they become (cron), job sinks (cloud, file), and keeping them in sync."""
