"""War Room's domain: incidents, roles, mentions, digests, drafts, exports, the plan, settings, the scheduler."""
