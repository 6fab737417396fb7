"""kubesvc: Kubernetes service networking as one Python program."""
