"""Enrollment: programmes, cohorts, enrolments, deadlines and withdrawals."""
