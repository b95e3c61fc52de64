"""The demo stack of docker-compose.yml: what its one-shot bootstrap service runs."""
