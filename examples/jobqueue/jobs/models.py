"""The job queue: a table of jobs, and a record of every time one was done."""

from django.db import models


class Job(models.Model):
    payload = models.PositiveIntegerField()
    done = models.BooleanField(default=False, db_index=True)


class Completion(models.Model):
    """One row per job done: the unique key proves that no job is done twice."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE)
    worker_pid = models.PositiveIntegerField()
