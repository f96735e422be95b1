"""Distillation: train Otter's inserted parameters (and the separate students) on a separate model's signal.

distill.py (ARGS and DExperts: the teacher's signal -> OtterStudent / TokenRewardStudent), teacher.py (what
the separate models say on a workload), students.py (the one seeded-minibatch training loop), metrics.py
(held-out agreement), quality.py (free-running quality of the guided arms), accel.py (the speculative
task's drafts).
"""
