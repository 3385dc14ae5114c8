"""Alert tracking: which storage level (threshold, exhausted) each user was last announced at."""

from __future__ import annotations

import logging

from quota_uploads.alerts import AlertPolicy, Crossing
from quota_uploads.ledger.table import Item, Table, n, number

logger = logging.getLogger(__name__)


class AlertLevels:
    def __init__(self, table: Table) -> None:
        self._table = table
        settings = table.settings
        self._policy = AlertPolicy(settings.alert_threshold_percent, settings.alert_rearm_percent)

    def track(self, sub: str, before: Item, used_delta: int) -> Crossing | None:
        """Records a move across an alert level; a Crossing when this call raised the level.

        The usage read before the write plus the delta only suggests a move; the conditional
        update on the real ``usedBytes`` decides, so concurrent batches announce a level once.
        The usage is already applied when this runs: if it fails, only the notice is lost, and
        the user's next change tries again.
        """
        if used_delta == 0:
            return None
        table = self._table
        policy = self._policy
        quota = table.usage_state(before).quota_bytes
        used = number(before, "usedBytes") + used_delta
        stored = number(before, "alertLevel")
        level = policy.level(used, quota)
        if level > stored:
            condition = (
                "(attribute_not_exists(alertLevel) OR alertLevel < :level) AND usedBytes >= :mark"
            )
            mark = policy.floor_bytes(level, quota)
        elif level < stored and used < policy.rearm_bytes(stored, quota):
            condition = "alertLevel > :level AND usedBytes < :mark"
            mark = policy.rearm_bytes(stored, quota)
        else:
            return None
        try:
            table.db.update_item(
                TableName=table.name,
                Key=table.usage_key(sub),
                UpdateExpression="SET alertLevel = :level",
                ConditionExpression=condition,
                ExpressionAttributeValues={":level": n(level), ":mark": n(mark)},
            )
        except table.db.exceptions.ConditionalCheckFailedException:
            return None
        except table.db.exceptions.ClientError:
            logger.exception("could not record the alert level of user %s", sub)
            return None
        return Crossing(sub, level, used, quota) if level > stored else None
