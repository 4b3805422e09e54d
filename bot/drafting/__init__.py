"""Public replies: drafts and their sign-off, the LLM client, prompts."""
