"""Print a survey's statistics: the numbers of the results page, as text or JSON."""

import json

from django.core.management.base import BaseCommand, CommandError

from survey.stats import SurveyStatistics, survey_for_results, survey_statistics
from survey.stats_intervals import CHANCE, Proportion
from survey.stats_preference import BOOTSTRAP_ITERATIONS, BOOTSTRAP_SEED, MAX_BOOTSTRAP_ITERATIONS


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _share(share: Proportion) -> str:
    if share.trials == 0:
        return "no answers"
    return (
        f"{_percent(share.share):>6} [{_percent(share.low)}, {_percent(share.high)}]"
        f"  {share.successes}/{share.trials}"
    )


class Command(BaseCommand):
    help = (
        "Print the statistics of a survey: totals, human detection, preference, position "
        "check and quality. Answers faster than the survey's minimum answer time are left "
        "out unless --include-too-fast is given."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--survey",
            help="Slug of the survey; the open default survey (or the newest open one) "
            "when left out.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the statistics as one JSON object."
        )
        parser.add_argument(
            "--include-too-fast",
            action="store_true",
            help="Count answers faster than the survey's minimum answer time.",
        )
        parser.add_argument(
            "--bootstrap",
            type=int,
            default=BOOTSTRAP_ITERATIONS,
            help=f"Bootstrap resamples for the preference intervals (0 to "
            f"{MAX_BOOTSTRAP_ITERATIONS}, default {BOOTSTRAP_ITERATIONS}).",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=BOOTSTRAP_SEED,
            help=f"Random seed of the bootstrap (default {BOOTSTRAP_SEED}).",
        )

    def handle(self, *args, **options):
        if not 0 <= options["bootstrap"] <= MAX_BOOTSTRAP_ITERATIONS:
            raise CommandError(
                f"--bootstrap must be between 0 and {MAX_BOOTSTRAP_ITERATIONS}, "
                f"got {options['bootstrap']}."
            )
        survey = survey_for_results(options["survey"])
        if survey is None:
            if options["survey"]:
                raise CommandError(f"Survey {options['survey']!r} not found.")
            raise CommandError("There is no survey yet; import posts first.")
        stats = survey_statistics(
            survey,
            include_too_fast=options["include_too_fast"],
            bootstrap_iterations=options["bootstrap"],
            seed=options["seed"],
        )
        if options["json"]:
            self.stdout.write(json.dumps(stats.as_dict(), indent=2, ensure_ascii=False))
            return
        self.stdout.write(self._text(stats, title=survey.title))

    def _text(self, stats: SurveyStatistics, *, title: str) -> str:
        lines = []
        quality = stats.quality
        excluded = "included" if stats.include_too_fast else "excluded"
        lines.append(f"Survey {stats.survey}: {title}")
        lines.append(
            f"Answers faster than {quality.min_answer_seconds} s are {excluded} "
            f"({quality.too_fast} such answers)."
        )
        lines.append("")

        totals = stats.totals
        lines.append(
            f"Participants: {totals.participants_started} started, "
            f"{totals.participants_finished} finished"
        )
        lines.append(
            f"Responses: {totals.served} served, {totals.answered} answered, "
            f"{totals.counted} counted"
        )
        for channel in totals.channels:
            lines.append(
                f"  {channel.channel:<8} {channel.participants:>6} participants "
                f"{channel.answered:>7} answers"
            )
        lines.append("")

        detection = stats.detection
        p_value = "–" if detection.p_value is None else f"{detection.p_value:.3g}"
        lines.append(f"Picked the human post (chance {_percent(CHANCE)})")
        lines.append(f"  {'overall':<30} {_share(detection.overall)}  p={p_value}")
        for heading, groups in (
            ("by model pair", detection.by_pair),
            ("by language", detection.by_language),
            ("by topic", detection.by_topic),
        ):
            lines.append(f"  {heading}")
            for group in groups:
                lines.append(f"    {group.label[:28]:<28} {_share(group.proportion)}")
        lines.append("")

        lines.append("Model post taken for the human one")
        for group in stats.taken_for_human:
            lines.append(f"  {group.label[:30]:<30} {_share(group.proportion)}")
        lines.append("")

        preference = stats.preference
        lines.append(
            f"Rather read: Plackett–Luce strength (sums to 1; bootstrap 95% interval, "
            f"{preference.bootstrap_iterations} resamples of participants, seed {preference.seed})"
            f" and share of picks when shown"
        )
        for author in preference.authors:
            lines.append(
                f"  {author.author[:30]:<30} {author.strength:.3f} "
                f"[{author.low:.3f}, {author.high:.3f}]   {_share(author.share)}"
            )
        lines.append("")

        lines.append("Display position picked (A, B, C; chi-square against equal use)")
        for check in stats.positions:
            counts = "  ".join(f"{position} {count}" for position, count in check.counts.items())
            test = (
                "–"
                if check.p_value is None
                else f"chi2={check.chi_square:.2f} p={check.p_value:.3g}"
            )
            warning = "  UNBALANCED" if check.unbalanced else ""
            lines.append(f"  {check.question:<14} {counts}  {test}{warning}")
        lines.append("")

        median = (
            "–"
            if quality.median_answer_seconds is None
            else f"{quality.median_answer_seconds:.1f} s"
        )
        lines.append(
            f"Quality: {quality.too_fast} too fast, {quality.unanswered} unanswered, "
            f"median answer time {median}"
        )
        lines.append(f"  {'round':>5} {'served':>7} {'answered':>9} {'left':>6}")
        for row in quality.drop_off:
            lines.append(f"  {row.round:>5} {row.served:>7} {row.answered:>9} {row.left:>6}")
        return "\n".join(lines)
