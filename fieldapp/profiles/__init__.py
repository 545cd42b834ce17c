"""The ``profiles`` blueprint: a child's identification profile, photos and report packet."""
