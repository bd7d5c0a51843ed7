"""A plugin module that asks for process isolation for every skill it defines
(tests/test_process_isolation.py)."""

from __future__ import annotations

import os

from sof_core import UIF, BaseSkillModule

SOF_ISOLATION = "process"


class PluginWhere(BaseSkillModule):
    skill_name = "PluginWhere"
    skill_description = "writes its pid"
    output_keys = ["plugin_pid"]
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["plugin_pid"] = os.getpid()
        return uif


class PluginStaysLocal(BaseSkillModule):
    skill_name = "PluginStaysLocal"
    skill_description = "opts out of its plugin's isolation"
    output_keys = ["stays_pid"]
    isolation = "thread"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["stays_pid"] = os.getpid()
        return uif
