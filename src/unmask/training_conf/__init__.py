"""The training recipes (``pretrain/``), on the search path of ``unmask-train`` only (its
``conf/train.yaml`` adds ``pkg://unmask.training_conf``), so that ``unmask-eval --help`` does not
offer a group it cannot use."""
