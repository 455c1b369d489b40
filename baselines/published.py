"""Published designs of the exercise, as values of the search's types.

design3762: adilsammar/woolly-of-cv, `MNIST_ALBUMENTATION_3762_99.52.ipynb` (model in
assets/mnist/mnist/model.py, `Net(base_channels=4, layers=3, drop=0.01, norm='bn')`):
three stages of three padded 3x3 convolutions at widths 4, 8, 8, each conv with a bias,
BatchNorm then ReLU, a max-pool after stages 1 and 2, dropout 0.01 after them, a global
average pool and a 1x1 convolution with a bias: 3,762 parameters, the convolutions
initialised Xavier-uniform with zero biases (its `initialize_weights`). Trained 15 epochs with
plain SGD (no momentum) at batch 32, the learning rate per epoch interpolated over epochs
0/2/8/12/15 as 0.05/0.1/0.01/0.005/0, and albumentations' ShiftScaleRotate(0.09, 0.09,
7 degrees, p 0.5) and RandomBrightnessContrast(p 0.5). Reported: 99.52% test accuracy at
epoch 15, one seed, with the test set used as the validation set (its log, every epoch,
is `reported_test_acc`).

Here the augmentations are this project's own tensor versions (nearest-neighbour
sampling, fill 1 of 255 outside the image; albumentations interpolates bilinearly and
reflects at the border), so a reproduction is of the design, not of its pixels.
"""

from __future__ import annotations

from spaces import Candidate, Net, Stage

from .rounds import Baseline

DESIGN_3762 = Candidate(
    Net((Stage((4, 4, 4), pad=True, pool=True), Stage((8, 8, 8), pad=True, pool=True), Stage((8, 8, 8), pad=True)),
        dropout=0.01, order="bn-relu", head="gap", drop="stage", bias=True, init="xavier"),
    lr=0.2,  # at batch 64 (linear scaling): 0.1 at its batch of 32
    lr_step=None, schedule="warmlinear", batch_size=32, momentum=0.0,
    rotation=7.0, shift=0.09, scale=0.09, affine_p=0.5, jitter=0.2,
)

PUBLISHED: dict[str, Baseline] = {
    "design3762": Baseline(
        name="design3762",
        candidate=DESIGN_3762,
        params=3_762,
        reported_test_acc=(96.48, 97.34, 98.01, 98.80, 98.84, 99.11, 99.28, 99.30, 99.40, 99.35, 99.36, 99.41,
                           99.42, 99.45, 99.52),  # the notebook's log (commit 7ade209), its "Val" set the test set
        source="adilsammar/woolly-of-cv, MNIST_ALBUMENTATION_3762_99.52.ipynb: one seed, the test set used "
               "as the validation set",
    ),
}
