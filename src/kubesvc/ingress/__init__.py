"""An Ingress controller with nginx as its data plane, like ingress-nginx.

`python -m kubesvc.ingress` runs in a pod on the node's network (`kubesvc addons enable
ingress` creates it): it watches Ingresses, IngressClasses, Services, EndpointSlices and
Secrets, builds a routing model from them (model.py, pure), renders it as an nginx
configuration (render.py, pure), writes the TLS files (tls.py) and reloads nginx gracefully
(nginx.py); controller.py ties these to the API server.
"""
