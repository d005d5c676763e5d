"""The one documented tree of EpiPose's configuration defaults.

Every key a YAML file or a command-line override may set is declared here, with its type (the
type of its default) and meaning. ``core.config.load_config`` merges a file and overrides into a
copy of this tree and rejects unknown keys and values of the wrong type.
"""
from yacs.config import CfgNode as CN

# Keys that may change between a run and its resumption from OUTPUT_DIR: they do not change the model being trained
# (more epochs, another device, other test or picture settings). Every other key must be as the run's checkpoint says.
RESUMABLE = ("SOLVER.MAX_EPOCHS", "SOLVER.LOG_PERIOD", "SOLVER.CHECKPOINT_PERIOD", "SOLVER.KEEP_CHECKPOINTS", "DOTRAIN",
             "DOTEST", "DEVICE", "OUTPUT_DIR", "DATASETS.NUM_WORKERS", "TEST.BATCH_SIZE", "TEST.SAVE_PREDICTIONS",
             "VIS.PREVIEW_SAMPLES", "VIS.VIDEO", "VIS.VIDEO_SEQUENCES", "VIS.VIDEO_FPS", "VIS.VIDEO_HEIGHT",
             "MODEL.COMPILE", "MODEL.CHANNELS_LAST")

_C = CN()

# ----------------------------------------------------------------------------- run control
_C.DOTRAIN = True            # train the model (skipped for parameter-free pipelines such as the DLT)
_C.DOTEST = True             # evaluate on the test split and write metrics.json
_C.WEIGHTS = ""              # checkpoint to load before training (fine-tuning) or testing
_C.OUTPUT_DIR = ""           # "" = outs/<config file stem>/
_C.SEED = 0                  # seeds Python, numpy and torch; data generation has its own seeds
_C.DEVICE = "auto"           # auto (cuda when available), cpu, cuda, cuda:N
_C.DETERMINISTIC = False     # torch.use_deterministic_algorithms (slower on CUDA)

# ----------------------------------------------------------------------------- model
_C.MODEL = CN()                  # joints: in the layout of DATASETS.SKELETON
_C.MODEL.PIPELINE = "triangulation"  # registry PIPELINES (modeling/pipelines/): triangulation, image, lifting,
                                     # screen_lifting, multiview_lifting, multiview_consistency, refined,
                                     # detect_and_lift, scoremap_lifting, image_lifting; the NAMEs below choose
                                     # its parts

_C.MODEL.CHANNELS_LAST = False       # image pipelines: channels_last memory format (faster convolutions on GPUs)
_C.MODEL.COMPILE = False             # torch.compile the networks (backbone, fusion, lifter) in place; the first steps
                                     # are slow while it compiles, later ones faster on GPUs
_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.NAME = "none"      # registry BACKBONES: resnet; "none" = the pipeline starts from 2D keypoints
_C.MODEL.BACKBONE.DEPTH = 50         # resnet: 18, 34, 50, 101, 152
_C.MODEL.BACKBONE.PRETRAINED = "none"  # none, imagenet (torchvision weights) or a local .pth of a torchvision ResNet
_C.MODEL.BACKBONE.WEIGHTS = ""       # with MODEL.LIFTER: checkpoint of a trained image pipeline (its backbone and
                                     # fusion) whose 2D the lifter takes
_C.MODEL.BACKBONE.FREEZE = False     # with MODEL.LIFTER: keep the backbone and fusion fixed (no heatmap loss)
_C.MODEL.BACKBONE.DECONV_CHANNELS = 256  # resnet: channels of the deconvolution head (SimpleBaseline: 256); the late
                                     # fusion layer works at this width
_C.MODEL.BACKBONE.HEATMAP_SIGMA = 2.0  # std of the Gaussian target heatmaps, heatmap pixels
_C.MODEL.BACKBONE.DECODE = "argmax"  # heatmap -> 2D: argmax (quarter-pixel refinement), argmax_taylor, soft_argmax,
                                     # centre_of_mass (argmax + centre of mass of a window: Epipolar Transformers)
_C.MODEL.BACKBONE.DECODE_RADIUS = 8  # centre_of_mass: the window is (2r + 1)^2 heatmap pixels around the argmax (the
                                     # reference's KEYPOINT.SIGMA: 8 at 64 x 64 heatmaps, 12 at 96 x 96)
# Inverse temperature of the soft-argmax (and of the algebraic head). Learnable triangulation uses 100 on its own
# heatmaps; on peak-1 Gaussians of sigma 2 that snaps to whole pixels, 20 keeps sub-pixel accuracy.
_C.MODEL.BACKBONE.SOFT_ARGMAX_BETA = 20.0

_C.MODEL.FUSION = CN()
_C.MODEL.FUSION.NAME = "none"        # registry FUSIONS: epipolar (He et al., CVPR 2020)
_C.MODEL.FUSION.MERGE = "late"       # early: after layer1; late: before the final 1x1 convolution
_C.MODEL.FUSION.SAMPLES = 64         # points sampled along each epipolar line
_C.MODEL.FUSION.SIMILARITY = "dot"   # dot or cosine
_C.MODEL.FUSION.SOURCES = "nearest"  # nearest, knn (K nearest) or all other views
_C.MODEL.FUSION.K = 2                # number of source views for knn
_C.MODEL.FUSION.AGGREGATION = "mean"  # several sources: mean or learned weights
_C.MODEL.FUSION.RESIDUAL = "reference"  # reference: features + merged + BN0(z(merged)) (He et al.'s ZRESIDUAL: the
                                        # attended features enter ungated); gated: features + BN0(z(merged)) (the
                                        # identity at initialisation, for inserting the layer into a trained backbone)
_C.MODEL.FUSION.PROJECTIONS = False  # learned 1x1 query and key projections before the similarity (the reference's
                                     # EPIPOLAR.PARAMETERIZED 'theta', 'phi'), starting as the identity

_C.MODEL.HEAD = CN()
_C.MODEL.HEAD.NAME = "none"          # registry HEADS: dlt (triangulation of the 2D keypoints of all views), ransac,
                                     # optimised (ransac, then a robust optimisation over time), algebraic
_C.MODEL.HEAD.CONFIDENCE_WEIGHTED = False  # weight each view's DLT rows by its 2D confidence
_C.MODEL.HEAD.MIN_CONFIDENCE = 0.0   # views whose 2D confidence is below this are dropped
_C.MODEL.HEAD.CONFIDENCE_FALLBACK = 0.0  # dlt, ransac: where fewer than 2 views pass MIN_CONFIDENCE, lower it for
                                         # that joint in steps of this until 2 do (0 = off: the joint is NaN;
                                         # Epipolar Transformers' pymvg triangulation: 0.05)
_C.MODEL.HEAD.UNDISTORT = True      # dlt, ransac: undistort the 2D before the DLT; False: the cameras' pinhole part
                                     # (lens distortion ignored, as Epipolar Transformers' pymvg cameras)
_C.MODEL.HEAD.INLIER_THRESHOLD_PX = 15.0  # ransac: inlier reprojection error, pixels of the 2D input (crop pixels
                                         # in image pipelines; 15 is Iskakov et al.'s value for 384 px crops)
_C.MODEL.HEAD.OPTIMISE_LOSS = "huber"  # optimised (RANSAC, then a robust joint optimisation over each sequence,
                                      # modeling/heads/optimised.py): huber or soft_l1 reprojection loss
_C.MODEL.HEAD.OPTIMISE_ROBUST_PX = 5.0  # optimised: scale of that loss, pixels of the 2D input (quadratic below it)
_C.MODEL.HEAD.OPTIMISE_SMOOTH_WEIGHT = 1.0  # optimised: px^2 per (mm / frame^2)^2 of each joint's acceleration
_C.MODEL.HEAD.OPTIMISE_BONE_WEIGHT = 1.0  # optimised: px^2 per mm^2 of a bone's deviation from its sequence's length
_C.MODEL.HEAD.OPTIMISE_ITERATIONS = 100  # optimised: L-BFGS iterations per batch
_C.MODEL.HEAD.OPTIMISE_VIEWS = "all"    # optimised: the views whose reprojection error counts: all (those passing
                                        # MIN_CONFIDENCE) or inliers (RANSAC's, where it triangulated the joint)
_C.MODEL.HEAD.OPTIMISE_OVER_TIME = True  # optimised: group each batch's samples by sequence and frame (smoothness and
                                         # bone lengths per sequence); False: per frame, the robust reprojection only
_C.MODEL.HEAD.LOSS_3D_WEIGHT = 0.0   # image pipelines: weight of the 3D loss besides heatmaps (algebraic: must be > 0)
_C.MODEL.HEAD.LOSS_3D = "mean_error"  # mean_error (mean joint error, m) or smooth_mse (learnable triangulation's
                                      # MSESmooth on the world 3D in cm: squared errors above the threshold grow as
                                      # their 0.1th power)
_C.MODEL.HEAD.SMOOTH_MSE_THRESHOLD = 400.0  # smooth_mse: cm^2 (learnable triangulation: 400)
_C.MODEL.HEAD.HEATMAP_LOSS_WEIGHT = 1.0  # image pipelines: weight of the heatmap MSE (learnable triangulation's
                                         # algebraic model: 0, a 3D loss alone)

_C.MODEL.LIFTER = CN()
_C.MODEL.LIFTER.NAME = "none"        # registry LIFTERS: linear (Martinez et al. 2017), poseformer (Zheng et al. 2021),
                                     # pose3d (Bouazizi et al. 2021, self-supervised from multi-view 2D),
                                     # esmformer (multi-view, supervised or self-supervised),
                                     # lcn (Ci et al. 2019), semgcn (Zhao et al. 2019),
                                     # scoremap_direct, scoremap_canonical (Zimmermann & Brox 2017, on score maps of
                                     # the 2D), image_canonical (Epipolar Transformers after Boukhayma et al. 2019,
                                     # on MODEL.BACKBONE's features of the crops)
_C.MODEL.LIFTER.WEIGHTS = ""         # checkpoint of a run of this lifter on keypoints: the one MODEL.REFINER refines,
                                     # or the start of a lifter composed with MODEL.BACKBONE
_C.MODEL.LIFTER.FREEZE = False       # with MODEL.BACKBONE: keep the lifter fixed
_C.MODEL.LIFTER.PCA_COMPONENTS = 0   # lifting pipeline, linear lifter: take this many principal components of the
                                     # standardised 2D (0 = off, the 2D itself; ERD: 30)
_C.MODEL.LIFTER.REPROJECTION_WEIGHT = 0.0  # pose3d: weight of the pixel reprojection loss (0 = off, the reference)
_C.MODEL.LIFTER.SELF_SUPERVISED = False  # esmformer: train from the 2D of all views alone (no 3D labels)
_C.MODEL.LIFTER.LOSS_W = 0.8         # esmformer self-supervised: weight of triangulation vs (1 - w) reprojection
_C.MODEL.LIFTER.ERROR_AWARE = False  # esmformer: error-aware adaptive weighting of the training windows
_C.MODEL.LIFTER.SCALE = "truth"      # scoremap_* and image_canonical, which predict the pose over a bone length: the
                                     # length that gives it in mm; truth: the target pose's own (an input from the
                                     # truth, the references' protocol), mean: the training set's mean (inputs alone)
_C.MODEL.LIFTER.SCOREMAP_SIGMA = 17.68  # scoremap_*: std of the Gaussian score maps, score-map pixels (hand3d:
                                        # exp(-d^2 / 25^2) on 256-pixel maps, std 25 / sqrt 2)
_C.MODEL.LIFTER.SCOREMAP_CROP_SCALE = 1.25  # scoremap_*: the maps cover a square of this x the larger side of the
                                            # box of the 2D, centred on it
# One node per registered lifter, MODEL.LIFTER.<NAME>: its constructor's arguments (the keys are their names in upper
# case; the sizes the data fixes, such as frames and joints, come from DATASETS), with the constructor's defaults.
_C.MODEL.LIFTER.LINEAR = CN()        # Martinez et al. 2017 (modeling/lifters/linear.py)
_C.MODEL.LIFTER.LINEAR.HIDDEN = 1024   # width of the residual MLP
_C.MODEL.LIFTER.LINEAR.NUM_BLOCKS = 2  # residual blocks
_C.MODEL.LIFTER.LINEAR.DROPOUT = 0.5
_C.MODEL.LIFTER.LINEAR.MAX_NORM = 1.0  # rescale each layer's weight to at most this norm in the forward pass (0 = off)
_C.MODEL.LIFTER.LCN = CN()           # Ci et al. 2019 (modeling/lifters/lcn.py)
_C.MODEL.LIFTER.LCN.HIDDEN = 64        # channels per joint
_C.MODEL.LIFTER.LCN.NUM_BLOCKS = 2
_C.MODEL.LIFTER.LCN.DROPOUT = 0.25
_C.MODEL.LIFTER.LCN.KNN = 3            # each joint connects to the joints within this many skeleton hops
_C.MODEL.LIFTER.SEMGCN = CN()        # Zhao et al. 2019 (modeling/lifters/semgcn.py)
_C.MODEL.LIFTER.SEMGCN.HIDDEN = 128    # channels per joint
_C.MODEL.LIFTER.SEMGCN.NUM_BLOCKS = 4
_C.MODEL.LIFTER.SEMGCN.DROPOUT = 0.0
_C.MODEL.LIFTER.SEMGCN.NON_LOCAL = True  # non-local blocks after the input layer and every residual block
_C.MODEL.LIFTER.POSE3D = CN()        # Bouazizi et al. 2021 (modeling/lifters/pose3d.py)
_C.MODEL.LIFTER.POSE3D.HIDDEN = 1024   # width of the encoder's and decoder's residual MLPs
_C.MODEL.LIFTER.POSE3D.LATENT = 1024   # size of the code between encoder and decoder
_C.MODEL.LIFTER.POSE3D.NUM_BLOCKS = 2  # residual blocks in the encoder and in the decoder
_C.MODEL.LIFTER.POSE3D.DROPOUT = 0.5
_C.MODEL.LIFTER.POSEFORMER = CN()    # Zheng et al. 2021 (modeling/lifters/poseformer.py)
_C.MODEL.LIFTER.POSEFORMER.EMBED_DIM_RATIO = 32  # channels per joint (the temporal tokens have 17 x this)
_C.MODEL.LIFTER.POSEFORMER.DEPTH = 4   # blocks of the spatial and of the temporal transformer
_C.MODEL.LIFTER.POSEFORMER.NUM_HEADS = 8
_C.MODEL.LIFTER.POSEFORMER.MLP_RATIO = 2.0  # MLP width / token width
_C.MODEL.LIFTER.POSEFORMER.DROP_PATH_RATE = 0.1  # stochastic depth of the last block (rising from 0)
_C.MODEL.LIFTER.ESMFORMER = CN()     # multi-view ESMformer (modeling/lifters/esmformer.py)
_C.MODEL.LIFTER.ESMFORMER.NUM_VIEWS = 4  # cameras of the rig (one feature extractor per view)
_C.MODEL.LIFTER.ESMFORMER.FEATURES = 512  # channels of each level's features after SMFE (512 in the paper)
_C.MODEL.LIFTER.ESMFORMER.SMFE_DEPTH = 5  # transformer blocks of each view's single-view feature extractor
_C.MODEL.LIFTER.ESMFORMER.MILF_DEPTH = 2  # transformer blocks of the multi-level fusion
_C.MODEL.LIFTER.ESMFORMER.DROPOUT = 0.1   # dropout in its transformers and on the fused levels
_C.MODEL.LIFTER.ESMFORMER.DROP_PATH_RATE = 0.2  # stochastic depth of the last block (rising from 0)
_C.MODEL.LIFTER.ESMFORMER.PROJECTION_DROPOUT = 0.25  # dropout after each level's projection to FEATURES
_C.MODEL.LIFTER.SCOREMAP_DIRECT = CN()  # Zimmermann & Brox 2017, "Direct" (modeling/lifters/scoremap.py)
_C.MODEL.LIFTER.SCOREMAP_DIRECT.SCOREMAP_SIZE = 256  # side of the input score maps, pixels
_C.MODEL.LIFTER.SCOREMAP_DIRECT.POOL = 8             # average pooling of the maps before the convolutions
_C.MODEL.LIFTER.SCOREMAP_DIRECT.CHANNELS = [32, 64, 128]  # PosePrior: two 3x3 convolutions (strides 1, 2) per width
_C.MODEL.LIFTER.SCOREMAP_DIRECT.HIDDEN = [512, 512]  # PosePrior: fully connected layers
_C.MODEL.LIFTER.SCOREMAP_DIRECT.DROPOUT = 0.2        # after each of them (hand3d: keep probability 0.8)
_C.MODEL.LIFTER.SCOREMAP_CANONICAL = CN()  # Zimmermann & Brox 2017, "Proposed": canonical pose + viewpoint
_C.MODEL.LIFTER.SCOREMAP_CANONICAL.SCOREMAP_SIZE = 256
_C.MODEL.LIFTER.SCOREMAP_CANONICAL.POOL = 8
_C.MODEL.LIFTER.SCOREMAP_CANONICAL.CHANNELS = [32, 64, 128]  # PosePrior, as SCOREMAP_DIRECT
_C.MODEL.LIFTER.SCOREMAP_CANONICAL.HIDDEN = [512, 512]
_C.MODEL.LIFTER.SCOREMAP_CANONICAL.DROPOUT = 0.2
_C.MODEL.LIFTER.SCOREMAP_CANONICAL.VIEW_CHANNELS = [64, 128, 256]  # ViewPoint network: its convolutions' widths
_C.MODEL.LIFTER.SCOREMAP_CANONICAL.VIEW_HIDDEN = [256, 128]  # its fully connected layers
_C.MODEL.LIFTER.SCOREMAP_CANONICAL.VIEW_DROPOUT = 0.25  # after each of them (hand3d: keep probability 0.75)
_C.MODEL.LIFTER.IMAGE_CANONICAL = CN()  # two linear heads on the pooled MODEL.BACKBONE features (no options;
                                        # modeling/lifters/image_canonical.py)

_C.MODEL.REFINER = CN()              # refines the single-view lifter's 3D (MODEL.LIFTER), loaded from
                                     # MODEL.LIFTER.WEIGHTS and frozen
_C.MODEL.REFINER.NAME = "none"       # registry REFINERS: erd (explicit residual descent, Kang et al. 2020)
_C.MODEL.REFINER.STAGES = 10         # K refinement stages
_C.MODEL.REFINER.EPOCHS_PER_STAGE = 1  # greedy training: stage k alone for this many epochs (SOLVER.MAX_EPOCHS
                                       # must be STAGES x EPOCHS_PER_STAGE)
_C.MODEL.REFINER.HIDDEN = 256        # width of each stage
_C.MODEL.REFINER.NUM_BLOCKS = 2      # linear residual blocks per stage
_C.MODEL.REFINER.DROPOUT = 0.25
_C.MODEL.REFINER.FEATURES = "delta"  # delta (input minus re-projected 2D), proj (re-projected 2D) or cat (input, delta)
_C.MODEL.REFINER.PCA_COMPONENTS = 0  # code the 2D features by this many principal components (0 = off; ERD: 30)
_C.MODEL.REFINER.ROOT = "gt"         # where the pose is placed to re-project it: gt (true pelvis, ERD's protocol) or
                                     # least_squares (the translation that best re-projects it onto the input 2D)
_C.MODEL.REFINER.UPDATE_ROOT = False  # least_squares: solve the root again before every stage (ERD's --update_pelvis)

# ----------------------------------------------------------------------------- data
_C.DATASETS = CN()
_C.DATASETS.NAME = "synthetic"       # registry DATASETS: synthetic, h36m, mpi_inf_3dhp (keypoints), h36m_toolbox,
                                     # h36m_learnable_triangulation (images), panoptic (keypoints or HD images),
                                     # rhd (hands: keypoints or images), ski (Ski-Pose PTZ keypoints)
_C.DATASETS.SKELETON = "h36m17"      # joint layout (core/skeleton.py): h36m17, mpi_inf_3dhp17, panoptic19, hand21;
                                     # the dataset must be able to give it (each reader keeps its files' own layout)
_C.DATASETS.MODE = "keypoints"       # keypoints: 2D keypoint sequences only; images: rendered crops too
_C.DATASETS.VIEWS = "all"            # all: one sample holds every view; single: one sample per view
_C.DATASETS.VAL_SUBJECTS = []        # training subjects held out as the validation split: each epoch is scored on
                                     # it and testing uses the best epoch (model_best.pth); [] = no validation
_C.DATASETS.TRAIN_VIEWS = ""         # the training split's VIEWS when it differs ("" = VIEWS)
_C.DATASETS.FRAMES = 1               # frames per sample (a window centred on the target frame, edge-padded)
_C.DATASETS.TRAIN_STRIDE = 1         # take every n-th frame as a training sample
_C.DATASETS.TEST_STRIDE = 1          # take every n-th frame as a test sample
_C.DATASETS.NUM_WORKERS = 0          # DataLoader worker processes
_C.DATASETS.AUGMENT = False          # images mode, training split: random zoom and rotation of each crop
_C.DATASETS.SCALE_FACTOR = 0.25      # zoom within 1 +- this (folded into K, so the geometry stays exact)
_C.DATASETS.ROTATION_FACTOR = 30.0   # rotation std in degrees (clipped at 2x, applied to 60 % of crops)
_C.DATASETS.FLIP = False             # keypoint samples, training split: mirror half of the samples (2D, 3D and
                                     # cameras together, left and right swapped; core/geometry/mirror.py)

_C.DATASETS.SYNTHETIC = CN()
_C.DATASETS.SYNTHETIC.SEED = 0                       # seed of the whole world (motion, rigs, noise)
_C.DATASETS.SYNTHETIC.TRAIN_SUBJECTS = ["S1", "S5", "S6", "S7", "S8"]
_C.DATASETS.SYNTHETIC.TEST_SUBJECTS = ["S9", "S11"]
_C.DATASETS.SYNTHETIC.ACTIONS = []                   # [] = every procedural action
_C.DATASETS.SYNTHETIC.SEQUENCES_PER_ACTION = 1       # sequences per subject and action
_C.DATASETS.SYNTHETIC.FRAMES_PER_SEQUENCE = 200
_C.DATASETS.SYNTHETIC.FPS = 50
_C.DATASETS.SYNTHETIC.MOTION_FILES = []              # BVH clips added as extra sequences (action = file stem)
_C.DATASETS.SYNTHETIC.MOTION_FILES_SPLIT = "train"     # split the clips join: train, test or both (subject "mocap")
_C.DATASETS.SYNTHETIC.RIG = "h36m_ring"              # h36m_ring (fixed 4-camera ring) or random (per sequence)
_C.DATASETS.SYNTHETIC.NUM_CAMERAS = 4                # cameras of a random rig (2..8); the ring uses it too
_C.DATASETS.SYNTHETIC.IMAGE_SIZE = 256               # rendered crop side, pixels
_C.DATASETS.SYNTHETIC.CROP_SCALE = 1.25              # crop side = CROP_SCALE x the larger side of the 2D box
_C.DATASETS.SYNTHETIC.CACHE_DIR = ""                 # images mode: cache rendered crops in an HDF5 file here
_C.DATASETS.SYNTHETIC.BODY_PER_SEQUENCE = False      # a new procedural body per training sequence (test: per subject)
_C.DATASETS.SYNTHETIC.OCCLUDERS = 0                  # occluders per sequence (poles, boxes, people) before a camera
_C.DATASETS.SYNTHETIC.FRONT_PRINT = False            # bodies wear a print on their shirt front (a legible front)
_C.DATASETS.SYNTHETIC.NOISE = CN()                   # detector-like noise on the 2D keypoints (keypoints mode)
_C.DATASETS.SYNTHETIC.NOISE.JITTER_PX = 3.0          # std of the Gaussian jitter of visible joints, pixels
_C.DATASETS.SYNTHETIC.NOISE.TEMPORAL_CORRELATION = 0.7   # AR(1) coefficient of the jitter along time
_C.DATASETS.SYNTHETIC.NOISE.OCCLUDED_SCALE = 3.0     # jitter multiplier for occluded joints
_C.DATASETS.SYNTHETIC.NOISE.OUTLIER_PROB = 0.02      # probability that a joint is an outlier
_C.DATASETS.SYNTHETIC.NOISE.OUTLIER_PX = 40.0        # std of an outlier's displacement, pixels
_C.DATASETS.SYNTHETIC.NOISE.SWAP_PROB = 0.01         # probability that a view's left/right limbs swap in a frame

_C.DATASETS.H36M = CN()                # Human3.6M 2D keypoints in the VideoPose3D format, NAME h36m
_C.DATASETS.H36M.ROOT = ""                           # folder of data_3d_h36m.npz and data_2d_h36m_<KEYPOINTS>.npz
_C.DATASETS.H36M.KEYPOINTS = "cpn_ft_h36m_dbb"       # 2D file suffix: gt, cpn_ft_h36m_dbb, or any other
_C.DATASETS.H36M.CAMERAS = ""                        # camera JSON (camera-parameters.json format); ""
                                                     # = <ROOT>/camera-parameters.json
_C.DATASETS.H36M.TRAIN_SUBJECTS = ["S1", "S5", "S6", "S7", "S8"]
_C.DATASETS.H36M.TEST_SUBJECTS = ["S9", "S11"]
_C.DATASETS.H36M.ACTIONS = []                        # action groups to keep (e.g. [Walking, Eating]); [] = all
_C.DATASETS.H36M.SKIP_TAKES = []                     # takes to leave out, "subject/action" as in the files

_C.DATASETS.H36M_IMAGES = CN()         # Human3.6M images, NAME h36m_toolbox or h36m_learnable_triangulation
_C.DATASETS.H36M_IMAGES.ROOT = ""                    # image root folder (the annotation's paths are relative to it)
_C.DATASETS.H36M_IMAGES.TRAIN_FILE = ""              # h36m_toolbox: h36m_train.pkl; learnable triangulation: labels .npy
_C.DATASETS.H36M_IMAGES.TEST_FILE = ""               # h36m_toolbox: h36m_validation.pkl; may equal TRAIN_FILE (.npy)
_C.DATASETS.H36M_IMAGES.TRAIN_SUBJECTS = ["S1", "S5", "S6", "S7", "S8"]
_C.DATASETS.H36M_IMAGES.TEST_SUBJECTS = ["S9", "S11"]
_C.DATASETS.H36M_IMAGES.IMAGE_SIZE = 256             # crop side, pixels
_C.DATASETS.H36M_IMAGES.CROP_SCALE = 1.0             # crop side = CROP_SCALE x the annotation's box side
_C.DATASETS.H36M_IMAGES.UNDISTORTED = False          # learnable triangulation: read imageSequence-undistorted/
_C.DATASETS.H36M_IMAGES.SKIP_DAMAGED = True          # leave out the damaged S9 takes (Greeting-2, SittingDown-2, Waiting-1)

_C.DATASETS.PANOPTIC = CN()            # CMU Panoptic Studio keypoints or images (datasets/panoptic.py), NAME
                                       # panoptic, SKELETON panoptic19; DATASETS.VAL_SUBJECTS holds training sequences
                                       # out
_C.DATASETS.PANOPTIC.ROOT = ""                       # the sequence folders' folder (<seq>/calibration_<seq>.json,
                                                     # <seq>/hdPose3d_stage1_coco19/body3DScene_<frame>.json; images
                                                     # mode: <seq>/hdImgs/<cam>/<cam>_<frame:08d>.jpg)
_C.DATASETS.PANOPTIC.TRAIN_SEQUENCES = ["171026_pose1", "171026_pose2", "171026_pose3", "171204_pose1",
                                        "171204_pose2", "171204_pose3", "171204_pose4"]
_C.DATASETS.PANOPTIC.TEST_SEQUENCES = ["171204_pose5", "171204_pose6"]
_C.DATASETS.PANOPTIC.CAMERAS = ["00_12", "00_06", "00_23", "00_13"]   # HD cameras (panel_node), the views' order
_C.DATASETS.PANOPTIC.MIN_CONFIDENCE = 0.1            # joints19 confidence below which a joint has no 3D truth
_C.DATASETS.PANOPTIC.IMAGE_SIZE = 384                # images mode: crop side, pixels (learnable triangulation: 384)
_C.DATASETS.PANOPTIC.CROP_SCALE = 1.2                # crop side = CROP_SCALE x the larger side of the box of the
                                                     # projected 3D truth (a margin for the feet and the head's top)

_C.DATASETS.RHD = CN()                 # Rendered Hand Pose (RHD), NAME rhd, SKELETON hand21: one hand per sample
_C.DATASETS.RHD.ROOT = ""                            # the RHD_published_v2 folder (training/, evaluation/)
_C.DATASETS.RHD.HAND = "mask"                        # the hand of an image: mask (more pixels in its segmentation mask,
                                                     # as hand3d), visible (more visible keypoints), both (each hand
                                                     # with a visible keypoint, a sample each)
_C.DATASETS.RHD.PALM = True                          # joint 0 = the palm centre (midpoint of the wrist and the middle
                                                     # knuckle), as hand3d trains and evaluates; False = the wrist
_C.DATASETS.RHD.IMAGE_SIZE = 256                     # images mode: crop side, pixels (hand3d: 256)
_C.DATASETS.RHD.CROP_SCALE = 1.0                     # crop side = CROP_SCALE x hand3d's tight hand crop

_C.DATASETS.SKI = CN()                 # Ski-Pose PTZ-Camera keypoints, NAME ski (datasets/ski.py)
_C.DATASETS.SKI.ROOT = ""                            # the unzipped Ski-PosePTZ-CameraDataset-png (train/, test/)
_C.DATASETS.SKI.CENTERS = ""                         # the skier's world centres, 'seq frame x y z' per line (metres);
                                                     # "" = <ROOT>/ski_centers.csv
_C.DATASETS.SKI.TRAIN_SUBJECTS = []                  # skiers ('subj' numbers) of train/labels.h5; [] = all
_C.DATASETS.SKI.TEST_SUBJECTS = []                   # skiers of test/labels.h5; [] = all
_C.DATASETS.SKI.CAMERAS = []                         # camera numbers ('cam', 0-5) kept as the views, in this order;
                                                     # [] = all six

_C.DATASETS.MPI_INF_3DHP = CN()        # MPI-INF-3DHP 2D keypoints, NAME mpi_inf_3dhp (datasets/mpi_inf_3dhp.py)
_C.DATASETS.MPI_INF_3DHP.ROOT = ""                   # folder of TRAIN_FILE and TEST_SET
_C.DATASETS.MPI_INF_3DHP.TRAIN_FILE = "data_train_3dhp.npz"   # P-STMO's training archive (subjects S1-S8)
_C.DATASETS.MPI_INF_3DHP.TEST_SET = "data_test_3dhp.npz"      # P-STMO's test archive, or the official test set's
                                                     # folder (mpi_inf_3dhp_test_set: TS<i>/annot_data.mat)
_C.DATASETS.MPI_INF_3DHP.TRAIN_SUBJECTS = ["S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8"]
_C.DATASETS.MPI_INF_3DHP.TEST_SUBJECTS = ["TS1", "TS2", "TS3", "TS4", "TS5", "TS6"]  # TS<i>: the test set; S<s>:
                                                     # training subjects of TRAIN_FILE (multi-view tests)
_C.DATASETS.MPI_INF_3DHP.CAMERAS = []                # training cameras ([] = all of TRAIN_FILE: 0, 1, 2, 4-8)
_C.DATASETS.MPI_INF_3DHP.CALIBRATION_ROOT = ""       # the official training set's folder (its
                                                     # S<s>/Seq<q>/camera.calibration): a take's CAMERAS form one
                                                     # multi-view sequence in its world frame; "" = each camera a
                                                     # single-view sequence of its own
_C.DATASETS.MPI_INF_3DHP.UNIVERSAL_3D = True         # 3D targets: univ_annot3 (the protocol's universal skeleton);
                                                     # False: annot3 (metric; TEST_SET the official folder only)
_C.DATASETS.MPI_INF_3DHP.PCK_JOINTS = "pstmo"        # the PCK / AUC joints: "pstmo" (P-STMO's evaluation: 14, not
                                                     # the pelvis, spine, head centre), "official" (the test set's: 17)

# ----------------------------------------------------------------------------- optimisation
_C.SOLVER = CN()
_C.SOLVER.OPTIMIZER = "adam"         # adam, amsgrad (Adam with AMSGrad), adamw, sgd
_C.SOLVER.BASE_LR = 1e-3
_C.SOLVER.WEIGHT_DECAY = 0.0
_C.SOLVER.MOMENTUM = 0.9             # sgd only
_C.SOLVER.LR_SCHEDULER = "exponential"   # exponential (per epoch by GAMMA), step (x GAMMA at STEPS), cosine, constant
_C.SOLVER.GAMMA = 0.96
_C.SOLVER.STEPS = []                 # epochs at which the step scheduler multiplies the rate by GAMMA
_C.SOLVER.HALVING_PERIOD = 0         # exponential: halve the rate (instead of x GAMMA) after every n-th epoch
                                     # (0 = off; ESMformer: 5)
_C.SOLVER.MAX_EPOCHS = 10
_C.SOLVER.BATCH_SIZE = 64            # per process
_C.SOLVER.GRAD_CLIP = 0.0            # max gradient norm; 0 = off
_C.SOLVER.AMP = False                # automatic mixed precision (CUDA only; ignored on the CPU)
_C.SOLVER.AMP_DTYPE = "float16"      # float16 (with gradient scaling) or bfloat16
_C.SOLVER.LR_SCALING = "none"        # under torchrun with N processes: none (BASE_LR as it is) or linear (BASE_LR x
                                     # N: the rate grows with the global batch BATCH_SIZE x N, Goyal et al. 2017)
_C.SOLVER.SYNC_BN = False            # under torchrun: batch-norm statistics over the global batch (SyncBatchNorm)
_C.SOLVER.CHECKPOINT_PERIOD = 1      # save a checkpoint every n epochs
_C.SOLVER.KEEP_CHECKPOINTS = 1       # periodic checkpoints kept: the newest n (an older one is deleted once a newer
                                     # one is written); model_best.pth and model_final.pth are always kept; 0 = all
_C.SOLVER.LOG_PERIOD = 50            # a log line every n iterations

# ----------------------------------------------------------------------------- evaluation
_C.TEST = CN()
_C.TEST.BATCH_SIZE = 256
_C.TEST.SAVE_PREDICTIONS = True      # write predictions.npz beside metrics.json
_C.TEST.FLIP = False                 # screen-coordinate lifters: average with the mirrored input's mirrored-back output
_C.TEST.GT_3D = "mocap"              # the 3D truth of absolute pipelines: mocap (the dataset's 3D joints) or
                                     # triangulated (the DLT of the ground-truth 2D of all views: Epipolar
                                     # Transformers' REAL3D, behind its published numbers)
_C.TEST.JDR_THRESHOLD = 0.05         # image pipelines: a 2D joint is detected within this fraction of the crop
                                     # width (0.05: the reference's half head size, head = crop width / 10)

# ----------------------------------------------------------------------------- pictures
_C.VIS = CN()
_C.VIS.PREVIEW_SAMPLES = 2           # test samples drawn to OUTPUT_DIR/preview/ and TensorBoard (0 = none)
_C.VIS.VIDEO = False                 # overlay MP4s of test sequences in OUTPUT_DIR/videos/
                                     # (core/engine/sequence_video.py); with DOTEST False the model runs on those
                                     # sequences only
_C.VIS.VIDEO_SEQUENCES = 2           # how many test sequences (spread over the test set; 0 = all)
_C.VIS.VIDEO_FPS = 25.0              # frame rate of the videos
_C.VIS.VIDEO_HEIGHT = 256            # pixel height of each view's panel


def get_defaults() -> CN:
    """A fresh, mutable copy of the defaults."""
    return _C.clone()


# ----------------------------------------------------------------------------- enumerated keys
# The keys with a fixed set of allowed values: ``core.config.load_config`` refuses any other value, naming the key,
# the value and these. (Registry names, DEVICE and MODEL.BACKBONE.PRETRAINED are open sets, checked where used.)
CHOICES = {
    "MODEL.BACKBONE.DEPTH": (18, 34, 50, 101, 152),
    "MODEL.BACKBONE.DECODE": ("argmax", "argmax_taylor", "centre_of_mass", "soft_argmax"),
    "MODEL.FUSION.MERGE": ("early", "late"),
    "MODEL.FUSION.SIMILARITY": ("dot", "cosine"),
    "MODEL.FUSION.SOURCES": ("nearest", "knn", "all"),
    "MODEL.FUSION.AGGREGATION": ("mean", "learned"),
    "MODEL.FUSION.RESIDUAL": ("reference", "gated"),
    "MODEL.HEAD.LOSS_3D": ("mean_error", "smooth_mse"),
    "MODEL.HEAD.OPTIMISE_LOSS": ("huber", "soft_l1"),
    "MODEL.HEAD.OPTIMISE_VIEWS": ("all", "inliers"),
    "MODEL.LIFTER.SCALE": ("truth", "mean"),
    "MODEL.REFINER.FEATURES": ("delta", "proj", "cat"),
    "MODEL.REFINER.ROOT": ("gt", "least_squares"),
    "DATASETS.MODE": ("keypoints", "images"),
    "DATASETS.VIEWS": ("all", "single"),
    "DATASETS.TRAIN_VIEWS": ("", "all", "single"),
    "DATASETS.SYNTHETIC.MOTION_FILES_SPLIT": ("train", "test", "both"),
    "DATASETS.SYNTHETIC.RIG": ("h36m_ring", "random"),
    "DATASETS.MPI_INF_3DHP.PCK_JOINTS": ("pstmo", "official"),
    "SOLVER.OPTIMIZER": ("adam", "amsgrad", "adamw", "sgd"),
    "SOLVER.LR_SCHEDULER": ("exponential", "step", "cosine", "constant"),
    "SOLVER.AMP_DTYPE": ("float16", "bfloat16"),
    "SOLVER.LR_SCALING": ("none", "linear"),
    "TEST.GT_3D": ("mocap", "triangulated"),
}
