"""The participant's score and the reveal shown on the finish page."""

from dataclasses import dataclass

from survey.models import HUMAN, POSITIONS, Participant, Post


@dataclass(frozen=True)
class RevealedPost:
    letter: str
    post: Post
    is_human: bool
    was_guessed_human: bool
    was_preferred: bool


@dataclass(frozen=True)
class RevealedRound:
    round_number: int
    topic_title: str
    posts: list[RevealedPost]
    guessed_correctly: bool


@dataclass(frozen=True)
class Summary:
    rounds: list[RevealedRound]

    @property
    def answered(self) -> int:
        return len(self.rounds)

    @property
    def spotted(self) -> int:
        return sum(1 for revealed in self.rounds if revealed.guessed_correctly)

    @property
    def preferred_human(self) -> int:
        return sum(
            1
            for revealed in self.rounds
            for post in revealed.posts
            if post.was_preferred and post.is_human
        )


def summarize(participant: Participant) -> Summary:
    rounds = []
    answered = participant.responses.answered().with_posts().order_by("round_number")
    for response in answered:
        posts = [
            RevealedPost(
                letter=letter,
                post=post,
                is_human=post.author == HUMAN,
                was_guessed_human=post.pk == response.guessed_human_id,
                was_preferred=post.pk == response.preferred_id,
            )
            for letter, post in zip(POSITIONS, response.displayed_posts, strict=True)
        ]
        rounds.append(
            RevealedRound(
                round_number=response.round_number,
                topic_title=response.topic.title,
                posts=posts,
                guessed_correctly=bool(response.guessed_correctly),
            )
        )
    return Summary(rounds=rounds)
