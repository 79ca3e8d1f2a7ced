"""The validation harness (vicokd.validation): the validation part, one-key changes, distilling
student runs at several seeds, and the teacher reused across settings that keep it."""

from __future__ import annotations

import json


from fake_artifacts import make_home, tiny_model_section
from vicokd.storage import write_json
from vicokd.validation import apply, run_setting, validation_split


def test_validation_split_cuts_the_train_half_only(tmp_path):
    write_json(tmp_path / "split.json", {"train": [f"s{i}" for i in range(20)], "test": ["t0"]})
    part = validation_split(str(tmp_path / "split.json"))
    assert len(part["test"]) == 5 and len(part["train"]) == 15
    assert set(part["train"]) | set(part["test"]) == {f"s{i}" for i in range(20)}
    assert part == validation_split(str(tmp_path / "split.json"))     # seeded


def test_apply_changes_nested_keys_and_several_at_once():
    config = {"student": {"weights": {"vc": 1.0, "fd": 1.0}, "lr": 1e-3}}
    out = apply(config, "student.weights.vc=10;student.fd_reduction=mean")
    assert out["student"] == {"weights": {"vc": 10, "fd": 1.0}, "lr": 1e-3, "fd_reduction": "mean"}
    assert config["student"]["weights"]["vc"] == 1.0                    # a copy


def test_distilling_students_at_several_seeds_share_one_teacher(tmp_path):
    files = make_home(tmp_path / "data", n_seq=6, views=2, lengths=(4, 6))
    config = {"model": tiny_model_section(frames=4),
              "teacher": {"epochs": 1, "batch_size": 4, "lr": 1e-3},
              "student": {"epochs": 1, "batch_size": 4, "lr": 1e-3}}
    teachers: dict = {}
    students = ("cokd-frame", "vicokd-sequence")
    first = run_setting(config, files, "multiasl", tmp_path / "runs", students, (0, 1), teachers)
    assert set(first["students"]) == {"cokd-frame-seed0", "cokd-frame-seed1",
                                      "vicokd-sequence-seed0", "vicokd-sequence-seed1"}
    assert first["students"]["cokd-frame-seed0"] != first["students"]["cokd-frame-seed1"]
    changed = apply(config, "student.weights.vc=100000")   # VC is tiny on this data
    second = run_setting(changed, files, "multiasl", tmp_path / "runs", students, (0, 1), teachers)
    assert len(teachers) == 1 and second["teacher"] == first["teacher"]
    # VC's weight moves ViCoKD, never CoKD (same seed, same teacher)
    assert second["students"]["cokd-frame-seed0"] == first["students"]["cokd-frame-seed0"]
    assert second["students"]["vicokd-sequence-seed0"] != first["students"]["vicokd-sequence-seed0"]
    other_teacher = apply(config, "teacher.lr=2e-3")
    run_setting(other_teacher, files, "multiasl", tmp_path / "runs", ("student-frame",), (0,),
                teachers)
    assert len(teachers) == 2
    json.dumps(first)                                                   # a JSON row
    plain = run_setting(config, files, "multiasl", tmp_path / "runs", teachers=teachers)
    assert set(plain) >= {"teacher", "student", "chance", "frame_chance"}
    assert "students" not in plain
