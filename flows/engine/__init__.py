"""The paid-job engine: every paid call is bought once through ``buy`` — the journal decides who pays
(a conditional create), the budget caps it, one shared waiter watches the job, incidents tell the operator.
"""
