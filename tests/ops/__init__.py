"""Operations tests: Prometheus config and alert rules, live scrapes of the gateway, the Grafana dashboard's queries."""
