"""A worker's one-line error reaches the user as that line, not as the wrapper's traceback."""

from __future__ import annotations

import ray.exceptions

from modsent.errors import ModsentError, first_line, innermost_user_error


class ActorRefusal(ModsentError):
    pass


def test_the_error_a_ray_actor_raised_is_found_inside_rays_wrapper():
    refusal = ActorRefusal("compute.device is cuda but this worker sees no GPU; use compute.device=auto")
    wrapped = ray.exceptions.RayTaskError("TranslateActor.__init__", "Traceback (most recent call last):\n  ...",
                                          refusal).as_instanceof_cause()
    assert isinstance(wrapped, ActorRefusal) and "\n" in str(wrapped)  # the worker's traceback: why it is unwrapped
    try:
        raise RuntimeError("the dataset's iterator failed") from wrapped
    except RuntimeError as err:
        assert innermost_user_error(err) is refusal
    assert innermost_user_error(RuntimeError("a bug")) is None


def test_first_line_of_an_empty_message_is_the_type_name():
    assert first_line(OSError()) == "OSError"
    assert first_line(ValueError("  bad value\n  more detail")) == "bad value"
