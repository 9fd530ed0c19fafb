"""Build-time segmentation, event validation and picking the observed breakpoints."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest

from bayes.ode import Events
from bayes.ode.grid import build_breakpoints, build_fixed_steps


def test_breakpoints_merge_observations_and_events_per_subject():
    obs = np.array([[1.0, 2.0, 4.0], [0.5, 3.0, 0.0]])
    mask = np.array([[True, True, True], [True, True, False]])
    events = Events.combine(
        Events.bolus([0, 1, 1], [1.5, 3.0, 9.0], "A", [1.0, 2.0, 3.0], 2),
        Events.infusion([0], [0.5], [3.0], "A", [1.0], 2),
    )
    grid = build_breakpoints(obs, mask, np.zeros(2), events)
    np.testing.assert_array_equal(grid.times[0], [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(grid.times[1], [0.0, 0.5, 3.0, 3.0, 3.0, 3.0, 3.0])
    np.testing.assert_array_equal(grid.n_segments, [6, 2])
    np.testing.assert_array_equal(grid.obs_index, [[2, 4, 6], [1, 2, 0]])
    # dose at 3.0 for subject 1 is at its last observation: it cannot act and is dropped;
    # the dose at 9.0 is after the last observation and dropped as well.
    np.testing.assert_array_equal(grid.bolus_index, [3, -1, -1])
    # infusion on [0.5, 3.0) covers segments 1..4 of subject 0
    np.testing.assert_array_equal(grid.infusion_segment, [1, 2, 3, 4])


def test_fixed_steps_adapt_to_segment_length_and_hit_breakpoints():
    obs = np.array([[0.05, 1.0]])
    grid = build_breakpoints(obs, np.ones_like(obs, bool), np.zeros(1), Events.empty(1))
    steps = build_fixed_steps(grid, max_step=0.1)
    # 0 -> 0.05 in one step, 0.05 -> 1.0 in ceil(0.95 / 0.1) = 10 steps
    np.testing.assert_array_equal(steps.breakpoint_step[0], [0, 1, 11])
    assert steps.n_steps == 11
    assert np.all(steps.step_size <= 0.1 + 1e-15)
    np.testing.assert_allclose(
        steps.step_time[1:, 0] + steps.step_size[1:, 0], np.linspace(0.145, 1.0, 10)
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(obs=np.array([[-1.0]])), "observation times"),
        (dict(bolus_time=-0.5), "bolus times"),
    ],
)
def test_invalid_inputs_are_rejected(kwargs, message):
    obs = kwargs.get("obs", np.array([[1.0]]))
    events = Events.bolus([0], [kwargs.get("bolus_time", 0.5)], "A", [1.0], 1)
    with pytest.raises(ValueError, match=message):
        build_breakpoints(obs, np.ones_like(obs, bool), np.zeros(1), events)


def test_events_validate_their_tables():
    with pytest.raises(ValueError, match="subject_idx"):
        Events.bolus([2], [1.0], "A", [1.0], n_subjects=2)
    with pytest.raises(ValueError, match="stops"):
        Events.infusion([0], [2.0], [1.0], "A", [1.0], n_subjects=1)
    with pytest.raises(ValueError, match="state names"):
        Events.bolus([0, 0], [1.0, 2.0], ["A"], [1.0, 1.0], n_subjects=1)


@pytest.mark.parametrize(
    "obs_index",
    [
        np.array([[1, 2, 3], [1, 2, 3]]),  # shared and consecutive: a slice
        np.array([[0, 2, 3], [0, 2, 3]]),  # shared, with a gap (an event breakpoint)
        np.array([[0, 1, 3], [1, 2, 0]]),  # different per subject: a gather
    ],
)
def test_states_at_observations_equal_the_per_subject_gather(obs_index):
    from bayes.ode.solve import _at_observations

    at_points = np.arange(2 * 4 * 3, dtype=float).reshape(2, 4, 3)
    picked = _at_observations(pt.as_tensor_variable(at_points), obs_index).eval()
    expected = np.stack([at_points[s, obs_index[s]] for s in range(2)])
    np.testing.assert_array_equal(picked, expected)
