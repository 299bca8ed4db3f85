"""The testing kit: one fake Kubernetes API server, served in process and over HTTP, and the hands
that drive the operator against it. For the test suite and the benchmarks, never for the product.

One model of the API server's semantics, served two ways::

    ApiServer (apiserver.py)          objects, one resourceVersion counter, writes, listings,
        |                             watches, garbage collection, reviews, faults; no I/O
        +-- FakeKube (fakekube.py)    in process: the operator's ``Kube`` interface, with the order
        |                             of a write's answer and its watch event chosen (unit tests)
        +-- ApiServerEmulator         over HTTP: kmock's server, its reactions and request history,
            (emulator.py)             answering from the model (integration tests, benchmarks)

The model's parts: :mod:`.semantics` (the rules that keep no state), :mod:`.watches` (events and
open watches), :mod:`.answers` (reviews and injected faults), :mod:`.managedfields` and
:mod:`.realobjects` (objects as large as a real server's); the HTTP face's request log:
:mod:`.hits`. :mod:`.jobrunner` plays the cluster's own controllers write by write. The hands around them: :mod:`.cluster` (the test's part of the cluster: objects
created through the API, the Job controller and kubelet played), :mod:`.operators` (the operator
in the test's event loop or as a child process) and :mod:`.process` (the operator process against
a real cluster).

Only :mod:`.emulator` and :mod:`.cluster` need kmock, which comes with the ``test`` extra
(``pip install 'asynctask-operator[test]'``); the rest needs only the operator's own dependencies.
No product module imports this package, nor kmock (import-linter contracts say so), so none of it
is on the operator's path at run time.
"""
