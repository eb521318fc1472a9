"""Progress: learner and cohort read models, and (issue 3) the xAPI LRS."""
