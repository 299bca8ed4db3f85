"""The HTTP gateway: the Async Request-Reply front door over the CRDs (docs/design.md §6.2, issue 16).

``POST /v1/namespaces/{ns}/tasks`` answers 202 with a Location to poll or stream; reads come
from one informer cache (:mod:`.store`), writes go to the API server on behalf of a caller
whose every request is authenticated (TokenReview) and authorized (SubjectAccessReview) by
the cluster itself (:mod:`.auth`). Modules:

- :mod:`.app` assembles the FastAPI application; :mod:`.cli` runs it on uvicorn;
- :mod:`.auth` who the caller is and what they may do; :mod:`.ratelimit` how often;
- :mod:`.problems` every error as ``application/problem+json`` (RFC 9457); :mod:`.requestlog` one log
  line per request;
- :mod:`.store` the read cache and its event fan-out; :mod:`.views` the answers' shapes;
- :mod:`.tasks`, :mod:`.queues`, :mod:`.schedules`, :mod:`.statistics`: one router per resource;
- :mod:`.aggregated` the aggregated API ``archive.asynctask.dev`` (``kubectl asynctask history``), served by
  :mod:`.aggregation` on a port of its own to the API server's front proxy (:mod:`.frontproxy`), in
  Kubernetes' shapes (:mod:`.apiobjects`), its errors as ``metav1.Status`` (:mod:`.kubestatus`).
"""
