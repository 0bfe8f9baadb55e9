"""``trainwell study chapter11``: the experiments of Géron's chapter 11 notebook, reproduced.

Each group trains its variants (built-in recipes named ``chapter11_*``, plus the transfer,
pretraining and exercise recipes) over the same seeds and compares trainwell's mean ± std
with the value the book prints, where it prints one.
"""

from trainwell.studies.chapter11.groups import GROUPS, Group, Variant, group_names, select_groups
from trainwell.studies.chapter11.report import (
    book_notes,
    group_table,
    print_tables,
    records,
    write_study_run,
)
from trainwell.studies.chapter11.runner import GroupResult, VariantResult, run_chapter11

__all__ = ["GROUPS", "Group", "Variant", "group_names", "select_groups", "run_chapter11",
           "GroupResult", "VariantResult", "group_table", "book_notes", "records",
           "print_tables", "write_study_run"]
