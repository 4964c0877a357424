"""High availability (issue 7): three ratesd behind HAProxy (deploy/haproxy/haproxy.cfg),
one killed hard and one drained with SIGTERM under load (tests/support/ha/drill.py lb_drill)."""
import json
import shutil

import pytest

from tests.support.ha import drill

pytestmark = pytest.mark.drill


@pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy not installed (make deps)")
def test_lb_replica_kill_and_drain():
    rep = drill.lb_drill(before_s=2.0, between_s=3.0, after_s=3.0)
    print(json.dumps(rep, indent=2, sort_keys=True))
    assert not rep.get("sanitizer_reports"), rep
    assert rep["ratesd_exit"]["r1"] == 0 and rep["ratesd_exit"]["r3"] == 0, rep
    assert rep["drain_exit_code"] == 0
    # HAProxy took the killed and the draining replica out of rotation.
    assert rep["haproxy_status_after"]["r1"].startswith("UP"), rep
    # A drain loses nothing; a hard kill may lose what was in flight on that replica only.
    assert rep["reads"]["failed_drain_window"] == 0, rep["reads"]
    assert rep["reads"]["failed_before"] == 0, rep["reads"]
    assert rep["reads"]["failed_kill_window"] <= 10, rep["reads"]
    if rep["batches_endpoint"]:
        assert rep["batches"]["failed_drain_window"] == 0, rep["batches"]
        assert rep["batches_lost"] == 0 and rep["batches_duplicated"] == 0, rep
        assert rep["batches_unacknowledged"] == [], rep
