import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from search.engine.data import (
    FILES,
    MEAN,
    ROTATION_FILL,
    STD,
    DataError,
    Split,
    augmented_epoch,
    batches,
    load_mnist,
    normalize,
    rotate,
    split_validation,
)
from tests.conftest import synthetic_split


@pytest.mark.parametrize("angle", [-7.0, -3.3, 0.0, 2.5, 7.0])
def test_rotation_matches_torchvision_rotate_exactly(mnist, angle):
    x = mnist.train.images[:16]
    mine = rotate(x, torch.full((16,), angle))
    ref = TF.rotate(x.unsqueeze(1), angle, interpolation=InterpolationMode.NEAREST, fill=[ROTATION_FILL])
    assert torch.equal(mine, ref.float())


@pytest.mark.parametrize("angle", [-7.0, 4.2, 7.0])
def test_rotation_matches_the_notebooks_pil_rotation_up_to_rounding_ties(mnist, angle):
    # The notebooks rotated PIL images; PIL breaks nearest-neighbour ties differently from
    # grid_sample, which moves a few border pixels (well under 1%) and nothing else.
    x = mnist.train.images[:16]
    mine = rotate(x, torch.full((16,), angle))[:, 0]
    pil = torch.stack([
        torch.from_numpy(np.array(TF.rotate(Image.fromarray(im.numpy(), mode="L"), angle, fill=1)))
        for im in x
    ]).float()
    assert (mine != pil).float().mean().item() < 0.005


def test_rotation_fills_with_one_of_255_before_normalisation():
    blank = torch.zeros(1, 28, 28, dtype=torch.uint8)
    out = rotate(blank, torch.tensor([7.0]))
    assert out[0, 0, 0, 0].item() == ROTATION_FILL  # a corner comes from outside the image
    assert out[0, 0, 14, 14].item() == 0.0
    assert normalize(out)[0, 0, 0, 0].item() == pytest.approx((1 / 255 - MEAN) / STD)


def test_each_image_gets_its_own_angle():
    # 256 copies of one image: a single shared angle would make every output identical.
    one = synthetic_split(1).images
    split = Split(one.expand(256, 28, 28).contiguous(), torch.zeros(256, dtype=torch.long))
    inputs, _ = augmented_epoch(split, torch.Generator().manual_seed(0), degrees=7.0)
    distinct = {tuple(img.flatten().tolist()) for img in inputs[:, 0]}
    assert len(distinct) > 50


def test_epoch_is_a_seeded_permutation_and_batches_cover_it():
    split = synthetic_split(300)
    a_in, a_lab = augmented_epoch(split, torch.Generator().manual_seed(5), degrees=7.0)
    b_in, b_lab = augmented_epoch(split, torch.Generator().manual_seed(5), degrees=7.0)
    assert torch.equal(a_in, b_in) and torch.equal(a_lab, b_lab)
    assert sorted(a_lab.tolist()) == sorted(split.labels.tolist())
    sizes = [len(y) for _, y in batches(a_in, a_lab, 64)]
    assert sizes == [64, 64, 64, 64, 44]


def test_without_augmentation_inputs_are_the_normalized_images():
    split = synthetic_split(10)
    inputs, labels = augmented_epoch(split, torch.Generator().manual_seed(0), degrees=0)
    for img, lab in zip(inputs, labels):
        match = [i for i in range(10) if torch.equal(normalize(split.images[i : i + 1])[0], img)]
        assert match and split.labels[match[0]] == lab


def test_validation_split_is_fixed_disjoint_and_complete():
    split = Split(torch.arange(100, dtype=torch.uint8).view(100, 1, 1).expand(100, 28, 28), torch.arange(100))
    tr, va = split_validation(split, 10, seed=0)
    tr2, va2 = split_validation(split, 10, seed=0)
    assert torch.equal(va.labels, va2.labels) and len(va) == 10 and len(tr) == 90
    assert set(tr.labels.tolist()).isdisjoint(va.labels.tolist())
    assert set(tr.labels.tolist()) | set(va.labels.tolist()) == set(range(100))


def test_real_mnist_shapes(mnist):
    assert mnist.train.images.shape == (60000, 28, 28) and mnist.train.images.dtype == torch.uint8
    assert mnist.test.images.shape == (10000, 28, 28)
    assert mnist.train.labels.bincount().tolist()[:2] == [5923, 6742]


def test_missing_data_is_one_sentence_naming_folder_and_files(tmp_path):
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in msg and all(name in msg for name in FILES)
    assert "\n" not in msg


@pytest.mark.mnist  # copies the real files
def test_corrupt_or_truncated_files_are_refused(tmp_path, data_root):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in FILES:
        (raw / name).write_bytes((data_root / "MNIST" / "raw" / name).read_bytes())
    labels = raw / "t10k-labels-idx1-ubyte"
    blob = bytearray(labels.read_bytes())
    blob[100] ^= 1  # same size, one flipped bit
    labels.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="MD5"):
        load_mnist(tmp_path, download=False)
    labels.write_bytes(bytes(blob[:-8]))
    with pytest.raises(DataError, match="bytes"):
        load_mnist(tmp_path, download=False)


def dot(row: int, col: int, n: int = 1) -> torch.Tensor:
    """n images, black but for one white pixel."""
    x = torch.zeros(n, 28, 28, dtype=torch.uint8)
    x[:, row, col] = 255
    return x


def test_a_shift_moves_the_image_by_that_fraction_of_its_side():
    moved = rotate(dot(10, 12), torch.zeros(1), shift=torch.tensor([[3 / 28, -2 / 28]]))[0, 0]
    assert moved[8, 15].item() == 255 and (moved == 255).sum().item() == 1  # 3 right, 2 up
    assert moved[0, 0].item() == ROTATION_FILL  # came in from outside the image


def test_a_scale_moves_a_point_away_from_the_centre_by_that_factor():
    # pixel (14, 10) spans 14..15 x 10..11 in a 28-pixel frame centred at 14: doubled about
    # the centre it spans 14..16 x 6..8, the 2x2 pixels at rows 14-15, columns 6-7
    big = rotate(dot(14, 10), torch.zeros(1), scale=torch.tensor([2.0]))[0, 0]
    assert (big == 255).nonzero().tolist() == [[14, 6], [14, 7], [15, 6], [15, 7]]
    same = rotate(dot(14, 10), torch.full((1,), 5.0), scale=torch.ones(1), shift=torch.zeros(1, 2))
    assert torch.equal(same, rotate(dot(14, 10), torch.full((1,), 5.0)))  # scale 1, shift 0: the plain turn


def test_with_chance_zero_no_image_is_transformed_and_with_one_half_about_half_are():
    split = Split(dot(10, 12, 400), torch.zeros(400, dtype=torch.long))
    plain, _ = augmented_epoch(split, torch.Generator().manual_seed(5), degrees=0)
    none, _ = augmented_epoch(split, torch.Generator().manual_seed(5), degrees=7.0, shift=0.1, scale=0.1, p=0.0)
    assert torch.equal(none, plain)
    half, _ = augmented_epoch(split, torch.Generator().manual_seed(5), degrees=7.0, shift=0.1, scale=0.1, p=0.5)
    changed = (half != plain).flatten(1).any(1).float().mean().item()
    assert 0.4 < changed < 0.6


def test_jitter_changes_brightness_and_contrast_within_its_limits_with_its_chance():
    grey = Split(torch.full((400, 28, 28), 100, dtype=torch.uint8), torch.zeros(400, dtype=torch.long))
    plain, _ = augmented_epoch(grey, torch.Generator().manual_seed(1), degrees=0)
    out, _ = augmented_epoch(grey, torch.Generator().manual_seed(1), degrees=0, jitter=0.2, jitter_p=0.5)
    pixels = out[:, 0, 0, 0] * STD * 255 + MEAN * 255  # back on the 0..255 scale
    assert pixels.min() >= 100 * 0.8 - 51 - 1e-3 and pixels.max() <= 100 * 1.2 + 51 + 1e-3
    changed = (out != plain).flatten(1).any(1).float().mean().item()
    assert 0.4 < changed < 0.6
    assert torch.unique(pixels).numel() > 100  # each jittered image its own brightness
