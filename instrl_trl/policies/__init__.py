"""
Operation policies outside training and how they are measured: the baselines that need no training (`baselines`),
playing a trained instructor (`instructor`), one episode per seed (`report`), a fixed query budget
(`query_efficiency`) and the best constant sequence (`constant_sequences`). The generation stage chooses among them
in `instrl_trl.generation.policies`.
"""
