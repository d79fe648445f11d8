"""All VOD request/response models in one import; they live in small per-area modules."""

from providers.vod.edit_param import (
    Canvas,
    Codec,
    Cover,
    EditParam,
    ElementExtra,
    Output,
    ProjectInfo,
    TrackElement,
    UploadInfo,
    single_clip_edit_param,
)
from providers.vod.models_base import VodParams, VodRequest, VodResult
from providers.vod.models_edit import (
    CreateProjectRequest,
    CreateProjectResult,
    DirectEditResult,
    GlobalProject,
    SearchGlobalProjectRequest,
    SearchGlobalProjectResult,
    SubmitDirectEditTaskRequest,
)
from providers.vod.models_media import MediaBasicInfo, MediaInfo, MediaListResult
from providers.vod.models_translation import (
    ADDITIONS,
    OUTPUT_KINDS,
    REVIEW_ADDITIONS,
    UPDATE_TYPES,
    AITranslationProject,
    Blueprint,
    ContinueAITranslationWorkflowRequest,
    ListAITranslationProjectResult,
    MediaObject,
    OperatorConfig,
    ProcessConfig,
    ProjectBaseInfo,
    RefreshAITranslationProjectRequest,
    Speaker,
    SubmitAITranslationWorkflowRequest,
    SubtitleConfig,
    SubtitleFile,
    SubtitleRecognitionConfig,
    TermbaseConfig,
    TranslationClip,
    TranslationConfig,
    TranslationOutput,
    TranslationTrack,
    Trim,
    UpdateAITranslationUtterancesRequest,
    Utterance,
    UtteranceUpdate,
    VoiceCloneConfig,
    leading_marks,
)
from providers.vod.models_upload import (
    QueryUploadTaskInfoResult,
    SourceInfo,
    UploadJob,
    UploadMediaByUrlRequest,
    UploadTaskInfo,
    UrlSet,
)
from providers.vod.models_workflow import (
    DirectUrl,
    OverrideParams,
    StartWorkflowRequest,
    TaskDetail,
    TranscodeInfo,
    WorkflowExecution,
    WorkflowExecutionResult,
    WorkflowParams,
)

__all__ = [name for name in dir() if not name.startswith("_")]
