"""A reward function whose values depend on the order of its calls, as the novelty reward's memory makes it."""

from collections import Counter


class OperationMemoryReward:
    """1 / (1 + times the operation was seen before): called in another order, it gives other rewards."""

    __name__ = "operation_memory"

    def __init__(self):
        self.seen: Counter[str] = Counter()

    def __call__(self, instructions, new_instructions, operation, **kwargs) -> list[float]:
        rewards = []
        for name in operation:
            rewards.append(1.0 / (1 + self.seen[name]))
            self.seen[name] += 1
        return rewards

    def state_dict(self) -> dict:
        return {"seen": dict(self.seen)}

    def load_state_dict(self, state: dict) -> None:
        self.seen = Counter(state["seen"])
