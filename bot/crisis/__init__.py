"""The incident itself: opening, roles, the room's facts and rumours, the timeline, the plan, `/crisis` parsing."""
