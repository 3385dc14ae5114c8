"""Drift repair: makes the ledger agree with what the bucket really holds, at any scale.

``check`` repairs one user from a listing of their prefix; ``inventory`` reads S3 Inventory
reports; ``work`` is the queue's worker that decides whom to check (users touched by activity,
hourly; users whose S3 count differs from their counters, daily) in bounded slices.
"""
