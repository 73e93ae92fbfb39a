"""A small judged project for the manager-API, pull and export tests.

Three generators (alpha < beta < gamma by id), four prompts, every prompt on all three pairs
(12 pairs), four raters (``r4`` marked excluded). ``final_verdict`` answers are set per pair
so that labels are known: see ``EXPECTED`` (pair index -> majority label without r4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Generator, Judgment, Membership, Pair, Project
from tests.factories import GeneratorFactory, MembershipFactory, ProjectFactory, PromptFactory, UserFactory, make_pair

# Per pair index: final_verdict answers of r1, r2, r3 (and r4, excluded, always the opposite).
ANSWERS: dict[int, tuple[str, str, str]] = {
    0: ("a", "a", "a"),  # unanimous a
    1: ("b", "b", "a"),  # majority b
    2: ("a", "b", "tie"),  # exact split -> undecided
    3: ("tie", "tie", "a"),  # majority tie
    4: ("a", "a", "b"),
    5: ("b", "b", "b"),
}
EXPECTED = {0: "a", 1: "b", 2: None, 3: "tie", 4: "a", 5: "b"}
OPPOSITE = {"a": "b", "b": "a", "tie": "a"}


@dataclass
class JudgedProject:
    project: Project
    manager: object
    raters: list = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    generators: list[Generator] = field(default_factory=list)

    def client(self, user=None) -> APIClient:
        client = APIClient()
        client.force_authenticate(user or self.manager)
        return client

    def token_client(self, user=None) -> APIClient:
        token, _ = Token.objects.get_or_create(user=user or self.manager)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client


def judge(pair: Pair, rater, answers: dict[str, str], **fields) -> Judgment:
    defaults = {"left_is_a": True, "duration_ms": 12000, "watch_a_seconds": 4.0, "watch_b_seconds": 4.5}
    return Judgment.objects.create(
        project=pair.project, pair=pair, rater=rater, answers=answers, **{**defaults, **fields}
    )


def judged_project(*, name: str = "Judged", with_judgments: bool = True) -> JudgedProject:
    project = ProjectFactory(name=name)
    manager = UserFactory()
    MembershipFactory(project=project, user=manager, role=Membership.ROLE_MANAGER)
    generators = [GeneratorFactory(project=project, name=n) for n in ("alpha", "beta", "gamma")]
    pairs: list[Pair] = []
    for p in range(4):
        prompt = PromptFactory(project=project, external_id=f"prompt-{p}", text=f'a "fox" number {p}\nin snow')
        for i in range(3):
            for j in range(i + 1, 3):
                pairs.append(make_pair(project=project, prompt=prompt, gen_a=generators[i], gen_b=generators[j]))
    raters = [UserFactory() for _ in range(4)]
    for index, rater in enumerate(raters):
        MembershipFactory(project=project, user=rater, role=Membership.ROLE_RATER, excluded=index == 3)
    data = JudgedProject(project=project, manager=manager, raters=raters, pairs=pairs, generators=generators)
    if with_judgments:
        for index, answers in ANSWERS.items():
            pair = pairs[index]
            for rater, answer in zip(raters[:3], answers, strict=True):
                judge(pair, rater, {"final_verdict": answer, "visual_appeal": "a"})
            judge(pair, raters[3], {"final_verdict": OPPOSITE[answers[0]], "visual_appeal": "b"})
    return data
