"""cmi5: the LMS side of xAPI's profile for launched content (issue 16).

Pure rules, free of Flask, SQLAlchemy and Kafka: structure.py (the course structure a
package holds, checked against the spec), moveon.py (when an AU, block or course is
satisfied), rules.py (what an AU may send in a session), terms.py (the profile's IRIs).
The LMS on top of the LRS: tables.py, lms.py (import, launch, fetch, the session
credential the LRS asks about, abandon, waive), api.py (the operator routes, the fetch
URL and the package's files).
"""
