"""
Operation policies outside training: the baselines that need no training (`baselines`), the online bandit
(`bandit`), playing a trained instructor (`instructor`) and the best constant sequence (`constant_sequences`). The
generation stage chooses among them in `instrl_trl.generation.policies`; every policy is measured by one loop,
`instrl_trl.generation.policy_evaluation`, with the cost ratios of `instrl_trl.backends.costs`.
"""
