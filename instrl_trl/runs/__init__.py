"""
The rules every stage keeps with its output folder: one run per folder and one recipe per folder (`folder`), what
defines a Trainer run's output (`fingerprint`), and which checkpoint a rerun resumes from (`checkpoints`).
"""
