"""Cluster DNS: Kubernetes DNS-based service discovery from informer caches, over UDP and TCP."""
