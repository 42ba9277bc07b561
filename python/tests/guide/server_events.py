"""The events the guide's server stored, all of them (the admin API pages them)."""

from __future__ import annotations


def stored_events(server) -> list[dict]:
    """Every event the server stored for the development environment, oldest first."""
    events: list[dict] = []
    while True:
        after = events[-1]["id"] if events else 0
        response = server.admin("GET", "/environments/development/events", params={"after": after, "limit": 1000})
        assert response.status_code == 200, response.text
        page = response.json()["events"]
        if not page:
            return events
        events.extend(page)
