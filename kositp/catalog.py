"""The 22 tasks of the seed project (README.ko.md, section 3), with stable SuperNI-style ids.

Everything that is per task (instruction bank, builders, shards, metadata) keys on ``Task.id``.
``seed_name`` is the ``Task_name`` the seed's own JSONL used, kept for its export layout.
``output_kind`` says what an answer looks like: a fixed ``label``, a ``span`` copied from the
input, or ``free_text``. Which record kinds feed a task is the builder's business
(:mod:`kositp.reformat.builders`), stated once there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OutputKind = Literal["label", "span", "free_text"]


@dataclass(frozen=True)
class Task:
    id: str
    seed_name: str
    name_en: str
    name_ko: str
    description: str
    category: str
    output_kind: OutputKind

    @property
    def number(self) -> int:
        return int(self.id[4:7])


SUPERNI_TASKS: tuple[Task, ...] = (
    Task("task001_answerability_classification", "Answerability_Classification", "Answerability Classification",
         "답변 가능성 분류", "질문이 주어지면 그 질문이 문단에서 답할 수 있는지에 대한 여부를 결정",
         "Answerability Classification", "label"),
    Task("task002_summarization", "Summarization", "Summarization", "요약",
         "텍스트가 주어지면 텍스트의 1/3 이상 분량의 summarization 생성", "Summarization", "free_text"),
    Task("task003_title_generation", "Title_Generation", "Title Generation", "제목 생성",
         "텍스트의 일부가 주어지면 알맞는 제목을 생성", "Title Generation", "free_text"),
    Task("task004_abstractive_qa_objective", "Abstractive QA Objective", "Abstractive QA Objective",
         "생성형 질의응답 객관식", "질문이 주어지면 질문에 맞는 답을 주어진 보기에서 선택", "Question Answering",
         "label"),
    Task("task005_abstractive_qa_short_answer", "Abstractive QA Subjective Short answer",
         "Abstractive QA Subjective Short Answer", "생성형 질의응답 단답형",
         "질문이 주어지면 질문에 맞는 답을 단답으로 생성", "Question Answering", "free_text"),
    Task("task006_abstractive_qa_long_answer", "Abstractive QA Subjective Long answer",
         "Abstractive QA Subjective Long Answer", "생성형 질의응답 서술형",
         "질문이 주어지면 질문에 맞는 답을 길고 자세하게 생성", "Question Answering", "free_text"),
    Task("task007_extractive_qa_objective", "Extractive_QA_Objective", "Extractive QA Objective",
         "추출형 질의응답 객관식", "질문이 주어지면 질문에 맞는 답을 컨텍스트를 참고하여 주어진 보기에서 선택",
         "Question Answering", "label"),
    Task("task008_extractive_qa_yes_no", "Extractive_QA_YesorNo", "Extractive QA Yes or No",
         "추출형 질의응답 예/아니오", "질문이 주어지면 질문에 맞는 답을 컨텍스트를 참고하여 예, 아니오로 대답",
         "Question Answering", "label"),
    Task("task009_extractive_qa_short_answer", "Extractive_QA_Short_Answer", "Extractive QA Subjective Short Answer",
         "추출형 질의응답 단답형", "질문이 주어지면 질문에 맞는 답을 컨텍스트를 참고하여 단답으로 생성",
         "Question Answering", "span"),
    Task("task010_extractive_qa_long_answer", "Extractive_QA_Long_Answer", "Extractive QA Subjective Long Answer",
         "추출형 질의응답 서술형", "질문이 주어지면 질문에 맞는 답을 컨텍스트를 참고하여 길고 자세하게 생성",
         "Question Answering", "span"),
    Task("task011_text_completion", "Text_Completion", "Text Completion", "텍스트 완성",
         "미완성 형태의 텍스트가 주어지면 나머지 부분을 예측", "Text Completion", "free_text"),
    Task("task012_title_to_contents", "Title2Contents_Generation", "Title2Contents Generation", "제목 기반 본문 생성",
         "짧은 제목이 주어지면 주어진 제목과 관련된 텍스트를 생성", "Text Generation", "free_text"),
    Task("task013_text_simplification", "Text_Simplification", "Text Simplification", "텍스트 단순화",
         "텍스트가 주어지면 텍스트를 50글자 이하의 문장으로 단순화", "Text Simplification", "free_text"),
    Task("task014_keyword_tagging", "Keyword_Tagging", "Keyword Tagging", "키워드 태깅",
         "텍스트 단락이 주어지면 텍스트 단락을 대표하는 다수의 키워드 생성", "Keyword Tagging", "free_text"),
    Task("task015_text_composition", "Text_Composition", "Text Composition", "텍스트 구성",
         "2~4개의 문장이 주어지면 중간의 빈 문장 단락을 생성", "Text Composition", "free_text"),
    Task("task016_summary_expansion", "Summary_Expansion", "Summary (Simplification) Expansion", "요약 확장",
         "요약된 문장이 주어지면 요약되지 않은 문장으로 재생성", "Text Expansion", "free_text"),
    Task("task017_table_qa_short_answer", "Table_QA_Short_Answer", "Table QA Short Answer", "표 질의응답 단답형",
         "HTML 형식의 표 자료가 주어지면 정답을 작성", "Question Answering", "span"),
    Task("task018_paraphrasing", "Paraphrasing", "Paraphrasing", "바꿔 쓰기",
         "텍스트의 의미를 온전히 보존하면서 다른 표현으로 변환하는 텍스트를 생성", "Paraphrasing", "free_text"),
    Task("task019_table_to_title", "Table2Title", "Table2Title", "표 제목 생성",
         "HTML 형식의 표 자료가 주어지면 표를 대표하는 제목 생성", "Title Generation", "free_text"),
    Task("task020_abstractive_qa_yes_no", "Abstractive QA Yes or No", "Abstractive QA Yes or No",
         "생성형 질의응답 예/아니오", "질문이 주어지면 질문에 맞는 답을 예, 아니오로 생성", "Question Answering",
         "label"),
    Task("task021_extractive_qa_objective_explanation", "Extractive_QA_Objective_Explanation",
         "Extractive QA Objective Explanation", "추출형 질의응답 객관식 근거 제시",
         "질문이 주어지면 질문에 맞는 답 주어진 보기에서 선택 후 참고 텍스트에서 정답의 근거를 함께 제시",
         "Explanation", "free_text"),
    Task("task022_extractive_qa_yes_no_explanation", "Extractive_QA_YesorNo_Explanation",
         "Extractive QA Yes or No Explanation", "추출형 질의응답 예/아니오 근거 제시",
         "질문이 주어지면 질문에 맞는 답을 예, 아니오로 생성하고 참고 텍스트에서 정답의 근거를 함께 제시",
         "Explanation", "free_text"),
)

SUPERNI_TASKS_BY_ID: dict[str, Task] = {t.id: t for t in SUPERNI_TASKS}


def get_task(task_id: str) -> Task:
    try:
        return SUPERNI_TASKS_BY_ID[task_id]
    except KeyError:
        raise KeyError(f"unknown task {task_id!r}; known: {', '.join(SUPERNI_TASKS_BY_ID)}") from None
