"""Report building blocks shared by the benchmark reports (:mod:`lean_kd.bench`) and the run
report (:mod:`lean_kd.run.report`): Markdown tables and numbers, and PNG figures, so every
table and figure lean_kd writes looks the same and neither package reaches into the other."""
