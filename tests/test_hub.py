"""Hub-style folders: write, load back with datasets.load_dataset, push through a fake HfApi."""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path

import datasets
import pytest
from huggingface_hub import DatasetCard

from vqa_shap.hub import folder as hub
from vqa_shap.hub.card import template_kinds
from vqa_shap.hub.push import push
from vqa_shap.errors import VqaShapError
from vqa_shap.schema.records import OptionOrigin, Question, VisualInput
from vqa_shap.schema.arrow import question_features

SECRET = "hf_FAKE_token_for_tests_0123456789"


def make_questions(n: int = 5, benchmark: str = "egoschema", variant: str = "original",
                   tag: str = "") -> list[Question]:
    """Questions exercising every column: nulls, several inputs, unicode, nested extra."""
    questions = []
    for i in range(n):
        inputs = [VisualInput("video", f"P0{i}/clip-{i}.mp4", start=1.5 * i, end=None, label="video 1")]
        if i % 2:
            inputs.append(VisualInput("image", f"P0{i}/clip-{i}.mp4", time=3.25, label="image 1"))
        options = tuple(f"{tag}option {k} of q{i} — café" for k in range(5 + i % 2))
        origin = tuple(OptionOrigin(f"q{(i + k) % n}", k) for k in range(len(options)))
        questions.append(Question(
            qid=f"{benchmark}_q{i}", benchmark=benchmark, task=f"task_{i % 3}",
            question=f"{tag}What does C do at <TIME 00:00:0{i}.000 video 1>?", options=options,
            answer=i % len(options), inputs=tuple(inputs), variant=variant, option_origin=origin,
            extra={"source": {"id": i, "tags": ["a", "b"]}, "note": None},
        ))
    return questions


def card_yaml(folder: Path) -> dict:
    return DatasetCard.load(folder / "README.md").data.to_dict()


# --------------------------------------------------------------------------------------------------
# round trip


def test_round_trip_with_load_dataset_gives_same_rows_and_features(tmp_path):
    questions = make_questions()
    info = hub.write_questions(tmp_path, "egoschema", questions)

    loaded = datasets.load_dataset(str(tmp_path), name="egoschema", split="test")
    assert loaded.features == question_features()
    assert loaded.to_list() == [q.to_row() for q in questions]
    assert hub.load_questions(tmp_path, "egoschema") == questions
    assert (info.num_rows, info.num_shards) == (5, 1)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "README.md", "egoschema/test-00000-of-00001.parquet",
    ]


def test_shards_are_laid_out_as_push_to_hub_and_keep_row_order(tmp_path):
    questions = make_questions(7)
    info = hub.write_questions(tmp_path, "egoschema", questions, max_rows_per_shard=3)
    files = sorted(p.name for p in (tmp_path / "egoschema").iterdir())
    assert files == [f"test-0000{i}-of-00003.parquet" for i in range(3)]
    assert info.num_shards == 3
    assert hub.load_questions(tmp_path, "egoschema") == questions


def test_default_config_goes_to_data_dir_like_push_to_hub(tmp_path):
    hub.write_questions(tmp_path, "default", make_questions(2))
    assert (tmp_path / "data" / "test-00000-of-00001.parquet").is_file()
    assert hub.load_questions(tmp_path, "default") == make_questions(2)


def test_adding_a_config_keeps_the_first_and_the_card_lists_both(tmp_path):
    first, second = make_questions(4), make_questions(6, benchmark="hd-epic", tag="x ")
    hub.write_questions(tmp_path, "egoschema", first, card_vars={"builder": "egoschema"})
    hub.write_questions(tmp_path, "hd-epic", second, card_vars={"builder": "hd-epic"})

    assert hub.list_configs(tmp_path) == ["egoschema", "hd-epic"]
    assert hub.load_questions(tmp_path, "egoschema") == first
    assert hub.load_questions(tmp_path, "hd-epic") == second
    yaml = card_yaml(tmp_path)
    assert yaml["configs"] == [
        {"config_name": "egoschema", "data_files": [{"split": "test", "path": "egoschema/test-*.parquet"}]},
        {"config_name": "hd-epic", "data_files": [{"split": "test", "path": "hd-epic/test-*.parquet"}]},
    ]
    infos = {i["config_name"]: i for i in yaml["dataset_info"]}
    assert infos["egoschema"]["splits"][0]["num_examples"] == 4
    assert infos["hd-epic"]["splits"][0]["num_examples"] == 6
    # the YAML features are the schema (load_dataset falls back on them when parquet metadata is absent)
    assert datasets.DatasetInfo._from_yaml_dict(infos["hd-epic"]).features == question_features()
    # the card body is re-rendered for both configs, with each config's own variables
    body = (tmp_path / "README.md").read_text().split("\n---\n", 1)[1]
    assert "| `egoschema` | egoschema | original | 4 | 5-6 | 3 |" in body
    assert "| `hd-epic` | hd-epic | original | 6 | 5-6 | 3 |" in body
    assert "built with `vqa-shap build hd-epic`" in body and "built with `vqa-shap build egoschema`" in body
    assert yaml["vqa_shap"]["configs"]["egoschema"]["builder"] == "egoschema"


def test_load_dataset_without_name_needs_a_name_once_there_are_two_configs(tmp_path):
    hub.write_questions(tmp_path, "egoschema", make_questions(3))
    # one config: it is the default one
    assert datasets.load_dataset(str(tmp_path), split="test").to_list() == [q.to_row() for q in make_questions(3)]
    hub.write_questions(tmp_path, "egoschema_easy", make_questions(3, variant="easy"))
    with pytest.raises(ValueError, match="Config name is missing") as err:
        datasets.load_dataset(str(tmp_path), split="test")
    assert "egoschema" in str(err.value) and "egoschema_easy" in str(err.value)


def test_existing_config_is_refused_then_replaced_with_overwrite(tmp_path):
    hub.write_questions(tmp_path, "egoschema", make_questions(7), max_rows_per_shard=3)
    before = (tmp_path / "README.md").read_text()
    with pytest.raises(VqaShapError, match="config 'egoschema' already exists.*overwrite"):
        hub.write_questions(tmp_path, "egoschema", make_questions(2))
    assert (tmp_path / "README.md").read_text() == before

    replacement = make_questions(2, tag="new ")
    hub.write_questions(tmp_path, "egoschema", replacement, overwrite=True)
    # fewer shards now: the old shard files are gone, and load_dataset does not serve a stale cache
    assert [p.name for p in (tmp_path / "egoschema").iterdir()] == ["test-00000-of-00001.parquet"]
    assert hub.load_questions(tmp_path, "egoschema") == replacement
    assert card_yaml(tmp_path)["dataset_info"]["splits"][0]["num_examples"] == 2


def test_a_crash_while_writing_leaves_no_half_written_config(tmp_path, monkeypatch):
    hub.write_questions(tmp_path, "egoschema", make_questions(4))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    real = datasets.Dataset.to_parquet
    calls = []

    def crash_on_second_shard(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(datasets.Dataset, "to_parquet", crash_on_second_shard)
    with pytest.raises(OSError, match="disk full"):  # a new config
        hub.write_questions(tmp_path, "hd-epic", make_questions(6), max_rows_per_shard=2)
    calls.clear()
    with pytest.raises(OSError, match="disk full"):  # replacing an existing config
        hub.write_questions(tmp_path, "egoschema", make_questions(6), max_rows_per_shard=2, overwrite=True)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # nothing added, nothing half-replaced, no temporary files left
    assert not list(tmp_path.glob(".*"))
    monkeypatch.undo()
    assert hub.load_questions(tmp_path, "egoschema") == make_questions(4)


def test_card_repairs_a_config_missing_from_it(tmp_path):
    """A crash between renaming a config into place and writing the card is healed by the next write."""
    hub.write_questions(tmp_path, "a", make_questions(2))
    card_with_only_a = (tmp_path / "README.md").read_text()
    hub.write_questions(tmp_path, "b", make_questions(3))
    (tmp_path / "README.md").write_text(card_with_only_a)
    assert hub.list_configs(tmp_path) == ["a"]
    hub.write_questions(tmp_path, "c", make_questions(1))
    assert hub.list_configs(tmp_path) == ["a", "b", "c"]
    assert len(hub.load_questions(tmp_path, "b")) == 3


def test_write_config_takes_a_dataset_and_rejects_bad_input(tmp_path):
    rows = [q.to_row() for q in make_questions(3)]
    ds = datasets.Dataset.from_list(rows, features=question_features())
    hub.write_config(tmp_path, "from_dataset", ds.select([2, 0]), features=question_features())
    assert hub.load_config(tmp_path, "from_dataset").to_list() == [rows[2], rows[0]]
    # a dataset with castable types (answer int64) is cast to the declared features
    wide = datasets.Dataset.from_list(rows, features=question_features()).cast_column("answer", datasets.Value("int64"))
    hub.write_config(tmp_path, "cast", wide, features=question_features())
    assert hub.load_config(tmp_path, "cast").features == question_features()
    # a config with other columns is not a questions config
    other = datasets.Features({"qid": datasets.Value("string")})
    hub.write_config(tmp_path, "other", [{"qid": "a"}], features=other)
    with pytest.raises(VqaShapError, match="config 'other' is not a questions config"):
        hub.load_questions(tmp_path, "other")

    bad = [dict(rows[0]), {k: v for k, v in rows[1].items() if k != "answer"}]
    with pytest.raises(VqaShapError, match=r"config 'x': row 'egoschema_q1': field\(s\) missing \['answer'\]"):
        hub.write_config(tmp_path, "x", bad, features=question_features())
    for name in ("../escape", "", "data"):
        with pytest.raises(VqaShapError, match="invalid config name"):
            hub.write_config(tmp_path, name, rows, features=question_features())
    with pytest.raises(VqaShapError, match="no card template for kind 'nonsense'.*known kinds: .*questions"):
        hub.write_config(tmp_path, "y", rows, features=question_features(), kind="nonsense")
    with pytest.raises(VqaShapError, match="JSON-serialisable"):
        hub.write_config(tmp_path, "z", rows, features=question_features(), card_vars={"when": object()})
    assert hub.list_configs(tmp_path) == ["cast", "from_dataset", "other"]


def test_one_folder_holds_one_kind(tmp_path):
    hub.write_questions(tmp_path, "egoschema", make_questions(2))
    if "attributions" not in template_kinds():
        pytest.skip("cards/attributions.md.j2 not written yet")
    with pytest.raises(VqaShapError, match="holds a 'questions' dataset"):
        hub.write_config(tmp_path, "m__egoschema", [], features=question_features(), kind="attributions")


def test_load_errors_name_the_folder_and_configs(tmp_path):
    with pytest.raises(VqaShapError, match="does not exist"):
        hub.load_config(tmp_path / "missing", "egoschema")
    hub.write_questions(tmp_path, "egoschema", make_questions(2))
    with pytest.raises(VqaShapError, match="no config 'mvbench'; configs: egoschema"):
        hub.load_questions(tmp_path, "mvbench")


# --------------------------------------------------------------------------------------------------
# push, with HfApi replaced by an in-memory fake Hub (the network boundary only)


class FakeCommit:
    commit_url = "https://huggingface.co/datasets/user/bench/commit/0000"


class FakeHfApi:
    """Records every call and keeps the repository's files in memory, as the Hub would."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.files: dict[str, bytes] = {}
        self.uploaded_trees: list[dict[str, bytes]] = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/datasets/{repo_id}"

    def list_repo_files(self, repo_id, **kwargs):
        self.calls.append(("list_repo_files", {"repo_id": repo_id, **kwargs}))
        return [".gitattributes", *self.files] if self.files else [".gitattributes"]

    def hf_hub_download(self, repo_id, filename, **kwargs):
        self.calls.append(("hf_hub_download", {"repo_id": repo_id, "filename": filename, **kwargs}))
        path = Path(self.download_dir) / filename
        path.write_bytes(self.files[filename])
        return str(path)

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        root = Path(kwargs["folder_path"])
        tree = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        self.uploaded_trees.append(tree)
        for pattern in kwargs.get("delete_patterns") or []:
            for name in [n for n in self.files if fnmatch.fnmatch(n, pattern) and n not in tree]:
                del self.files[name]
        self.files.update(tree)
        return FakeCommit()

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def materialize(self, folder: Path) -> Path:
        """Write the repository's files to ``folder`` (what a clone/snapshot of the Hub repo holds)."""
        shutil.rmtree(folder, ignore_errors=True)
        for name, content in self.files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(content)
        return folder


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    api = FakeHfApi()
    api.download_dir = tmp_path / "downloads"
    api.download_dir.mkdir()
    return api


def test_push_uploads_the_folder_that_load_dataset_loads(tmp_path, fake_hub):
    local = tmp_path / "local"
    hub.write_questions(local, "egoschema", make_questions(4))
    hub.write_questions(local, "egoschema_hard_5", make_questions(4, variant="hard_5"), max_rows_per_shard=2)

    result = push(local, "user/bench", api=fake_hub)

    assert fake_hub.names() == ["create_repo", "list_repo_files", "upload_folder"]
    create = fake_hub.calls[0][1]
    assert (create["repo_id"], create["repo_type"], create["exist_ok"], create["private"]) == (
        "user/bench", "dataset", True, False)
    upload = fake_hub.calls[2][1]
    assert (upload["repo_id"], upload["repo_type"], upload["delete_patterns"]) == ("user/bench", "dataset", None)
    assert all(kwargs.get("token") == SECRET for _, kwargs in fake_hub.calls)  # the login's token, passed through
    assert not Path(upload["folder_path"]).exists()  # the staging copy is cleaned up
    assert result.configs == ("egoschema", "egoschema_hard_5") and result.replaced == () and result.kept == ()

    uploaded = set(fake_hub.uploaded_trees[0])
    assert uploaded == {"README.md", "egoschema/test-00000-of-00001.parquet",
                        "egoschema_hard_5/test-00000-of-00002.parquet", "egoschema_hard_5/test-00001-of-00002.parquet"}
    for name in uploaded - {"README.md"}:  # data files are the local ones, byte for byte
        assert fake_hub.uploaded_trees[0][name] == (local / name).read_bytes()
    remote = fake_hub.materialize(tmp_path / "remote")
    for config in ("egoschema", "egoschema_hard_5"):
        loaded = datasets.load_dataset(str(remote), name=config, split="test")
        assert loaded.features == question_features()
        assert loaded.to_list() == hub.load_config(local, config).to_list()
    assert 'load_dataset("user/bench", name="egoschema", split="test")' in (remote / "README.md").read_text()


def test_push_refuses_to_overwrite_an_existing_config_unless_asked(tmp_path, fake_hub):
    local = tmp_path / "local"
    hub.write_questions(local, "egoschema", make_questions(5), max_rows_per_shard=2)
    push(local, "user/bench", api=fake_hub)
    assert sorted(n for n in fake_hub.files if n.startswith("egoschema/")) == [
        f"egoschema/test-0000{i}-of-00003.parquet" for i in range(3)]

    replacement = make_questions(2, tag="new ")
    hub.write_questions(local, "egoschema", replacement, overwrite=True)
    fake_hub.calls.clear()
    with pytest.raises(VqaShapError, match="user/bench already has config.* egoschema.*--overwrite"):
        push(local, "user/bench", api=fake_hub)
    assert "upload_folder" not in fake_hub.names()

    result = push(local, "user/bench", api=fake_hub, overwrite=True)
    assert result.replaced == ("egoschema",)
    assert fake_hub.calls[-1][1]["delete_patterns"] == ["egoschema/*"]
    # the stale shards of the old, longer config are gone; the Hub copy loads the new rows
    assert sorted(n for n in fake_hub.files if n.startswith("egoschema/")) == ["egoschema/test-00000-of-00001.parquet"]
    remote = fake_hub.materialize(tmp_path / "remote")
    assert hub.load_questions(remote, "egoschema") == replacement


def test_push_keeps_configs_that_exist_only_on_the_hub(tmp_path, fake_hub):
    first, second = tmp_path / "first", tmp_path / "second"
    hub.write_questions(first, "egoschema", make_questions(3))
    hub.write_questions(second, "hd-epic", make_questions(4, benchmark="hd-epic"))
    push(first, "user/bench", api=fake_hub)
    result = push(second, "user/bench", api=fake_hub)

    assert result.kept == ("egoschema",) and "hf_hub_download" in fake_hub.names()
    remote = fake_hub.materialize(tmp_path / "remote")
    assert hub.list_configs(remote) == ["egoschema", "hd-epic"]
    assert hub.load_questions(remote, "egoschema") == make_questions(3)
    assert hub.load_questions(remote, "hd-epic") == make_questions(4, benchmark="hd-epic")
    body = (remote / "README.md").read_text()
    assert "| `egoschema` | egoschema |" in body and "| `hd-epic` | hd-epic |" in body
    assert hub.list_configs(second) == ["hd-epic"]  # the local folder is not changed by pushing


def test_push_without_a_token_or_offline_fails_clearly(tmp_path, monkeypatch):
    hub.write_questions(tmp_path, "egoschema", make_questions(2))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    with pytest.raises(VqaShapError, match="not logged in.*HF_TOKEN"):
        push(tmp_path, "user/bench", api=FakeHfApi())
    # the real HfApi under HF_HUB_OFFLINE=1 (set by conftest): no network call is attempted
    with pytest.raises(VqaShapError, match="offline mode") as err:
        push(tmp_path, "user/bench", token=SECRET)
    assert SECRET not in str(err.value)
    with pytest.raises(VqaShapError, match="no configs to push"):
        push(tmp_path / "empty", "user/bench", token=SECRET, api=FakeHfApi())


def test_hub_http_errors_become_one_line_without_the_token(tmp_path, fake_hub):
    from types import SimpleNamespace

    from huggingface_hub.errors import HfHubHTTPError

    hub.write_questions(tmp_path, "egoschema", make_questions(2))

    def refuse(repo_id, **kwargs):
        # the parts of an HTTP response HfHubHTTPError reads
        response = SimpleNamespace(status_code=403, headers={}, request=None)
        raise HfHubHTTPError(f"403 Forbidden for token {kwargs['token']}", response=response)

    fake_hub.create_repo = refuse
    with pytest.raises(VqaShapError, match="refused access to user/bench \\(HTTP 403\\)") as err:
        push(tmp_path, "user/bench", api=fake_hub)
    assert SECRET not in str(err.value)
