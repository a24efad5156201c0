"""Captions: a clip's meta.json, else ReCamMaster's metadata.csv (both of its path conventions)."""

import json
import shutil

import pytest

from mvt4g.errors import InputError
from mvt4g.io.captions import caption_of, read_captions_csv
from mvt4g.io.clip import read_clip


def _multicamvideo(make_clip, tmp_path):
    """A MultiCamVideo-like dataset: ROOT/train/f24_aperture5/scene1 (no caption in its meta.json)."""
    src = make_clip("source", frames=5)
    scene = tmp_path / "MultiCamVideo-Dataset" / "train" / "f24_aperture5" / "scene1"
    shutil.copytree(src, scene)
    (scene / "meta.json").write_text(json.dumps({"fps": 10}))
    return scene.parents[2], scene


def test_training_layout_names_videos_relative_to_train(make_clip, tmp_path):
    root, scene = _multicamvideo(make_clip, tmp_path)
    (root / "metadata.csv").write_text(
        'file_name,text\nf24_aperture5/scene1/videos/cam01.mp4,"a bear, walking on rocks"\n'
        "f24_aperture5/other/videos/cam01.mp4,something else\n"
    )
    clip = read_clip(scene)
    assert clip.caption == "a bear, walking on rocks"
    assert clip.caption_source == root / "metadata.csv"


def test_a_later_view_or_the_clip_folder_may_carry_the_caption(make_clip, tmp_path):
    root, scene = _multicamvideo(make_clip, tmp_path)
    (root / "metadata.csv").write_text("file_name,text\nf24_aperture5/scene1/videos/cam02.mp4,second view\n")
    assert read_clip(scene).caption == "second view"
    (root / "metadata.csv").write_text("file_name,caption\nf24_aperture5/scene1,the scene\n")
    assert read_clip(scene).caption == "the scene"  # a rewritten csv is read again


def test_inference_layout_names_videos_relative_to_the_csv(tmp_path):
    videos = tmp_path / "example_test_data" / "videos"
    videos.mkdir(parents=True)
    (videos / "case0.mp4").write_bytes(b"")
    (videos.parent / "metadata.csv").write_text('file_name,text\nvideos/case0.mp4,"a line\nand another"\n')
    caption = caption_of([videos / "case0.mp4"])
    assert caption.text == "a line\nand another"
    assert caption_of([videos / "case1.mp4"]).text == ""


def test_meta_json_wins_and_no_caption_is_empty(make_clip, tmp_path):
    clip = read_clip(make_clip(frames=5))
    assert (clip.caption, clip.caption_source) == ("noise", clip.root / "meta.json")
    root, scene = _multicamvideo(make_clip, tmp_path)
    assert (read_clip(scene).caption, read_clip(scene).caption_source) == ("", None)


def test_the_search_stops_a_few_folders_up(tmp_path):
    deep = tmp_path / "a" / "b" / "c" / "d" / "e" / "f" / "g"
    deep.mkdir(parents=True)
    (tmp_path / "metadata.csv").write_text("file_name,text\na/b/c/d/e/f/g/v.mp4,far away\n")
    assert caption_of([deep / "v.mp4"]).text == ""
    (tmp_path / "a" / "b" / "metadata.csv").write_text("file_name,text\nc/d/e/f/g/v.mp4,near\n")
    assert caption_of([deep / "v.mp4"]).text == "near"


@pytest.mark.parametrize("content, message", [
    ("name,text\nx.mp4,y\n", "needs the columns file_name and text, found name, text"),
    ("", "found none"),
    (b"file_name,text\n\xff\xfe,x\n", "unreadable captions file"),
])  # fmt: skip
def test_a_broken_csv_is_named(tmp_path, content, message):
    path = tmp_path / "metadata.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError, match=message) as info:
        read_captions_csv(path)
    assert str(path) in str(info.value)


def test_an_unrelated_metadata_csv_above_a_video_is_not_a_captions_file(tmp_path):
    videos = tmp_path / "project" / "videos"
    videos.mkdir(parents=True)
    (tmp_path / "metadata.csv").write_text("id,score\n1,0.5\n")  # someone else's table, two folders up
    assert caption_of([videos / "v.mp4"]).text == ""
    (tmp_path / "metadata.csv").write_text("file_name,notes\nproject/videos/v.mp4,x\n")  # meant as captions
    with pytest.raises(InputError, match="needs the columns file_name and text"):
        caption_of([videos / "v.mp4"])


def test_a_linked_clip_matches_its_row_by_its_path_in_the_dataset(make_clip, tmp_path):
    src = make_clip("elsewhere", frames=5)
    (src / "meta.json").write_text(json.dumps({"fps": 10}))
    dataset = tmp_path / "dataset"
    (dataset / "train").mkdir(parents=True)
    (dataset / "train" / "scene1").symlink_to(src)
    (dataset / "metadata.csv").write_text("file_name,text\nscene1/videos/cam01.mp4,linked\n")
    assert read_clip(dataset / "train" / "scene1").caption == "linked"
