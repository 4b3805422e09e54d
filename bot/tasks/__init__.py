"""Coordination: tasks with owners and due times, their reminders, follow-ups, and channel archiving."""
