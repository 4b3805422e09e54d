"""What the internet is saying: mentions, ingest, feeds, sentiment, spikes and digests."""
