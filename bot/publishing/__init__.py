"""Publishing approved replies to Mastodon and Bluesky, exactly once (see publish.py for the guarantees)."""
