"""The Textual TUI that follows the engine live (planned)."""
