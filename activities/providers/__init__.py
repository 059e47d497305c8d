"""Cloud providers that run trainings instead of GPU agents (Replicate first): the interface each one
implements, the registry, their settings, circuit breakers, webhooks and the trainings they run."""
