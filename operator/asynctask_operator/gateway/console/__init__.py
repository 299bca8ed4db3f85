"""The web console: server-rendered pages over the gateway's cache and authorization."""
