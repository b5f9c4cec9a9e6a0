"""Device-side code: the job protocol and the runner that executes a job on a device.

Everything in this package ships in the runner bundle (``targets.remote.build_runner_bundle``), together with the
package modules it imports (found by reading their imports, not listed by hand) and the framework modules the
runner loads by name. So nothing here may import pytest, paramiko, adbutils or any other host-only package.
"""
