"""The work that moves cases and messages: sync (import) → tick (alerts) → outbox queue → dispatch."""
